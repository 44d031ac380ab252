"""What a run config builds: data sources, the policy with its trainable set, the optimizer.

Shared by the trainer (which trains what these build), evaluation and the comparison
(which restore a run's weights into the same policy without building a trainer).
"""

import jax.numpy as jnp
import optax
from flax import nnx

from amrsd import config as config_lib
from amrsd import data as data_lib
from amrsd import models, prompts, sharding
from amrsd.optimizer import float32_master, freeze_layers


def open_sources(config):
  """(train source, held-out source) for config.data (see amrsd.data.open_sources)."""
  return data_lib.open_sources(config.data, seed=config.seed)


def task_template(config) -> str:
  """The prompt template the student sees (config.prompts.task, else the built-in one)."""
  return dict(config.prompts).get("task", prompts.TEMPLATES["task"])


def load_policy(config, mesh=None):
  """(model, tokenizer, trainable nnx filter) for config.model and config.train.

  The model is loaded in config.model.dtype (placed on `mesh` when given), with the
  run's remat policy, layer scan, frozen bottom blocks or LoRA adapters; the tokenizer
  with config.model.chat_template when one is given.
  """
  path = config.model.path or models.default_model_path()
  dtype = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[config.model.dtype]
  model, tokenizer = models.load(path, dtype=dtype, mesh=mesh)
  if tokenizer is None:
    raise ValueError(f"{path}: the model folder has no tokenizer files; a policy needs one")
  if config.model.chat_template:
    with open(config_lib.chat_template_path(config.model.chat_template)) as f:
      tokenizer.chat_template = f.read()
  model.remat = config.model.remat
  model.scan_layers = config.model.scan_layers
  model.attention = config.model.attention
  t = config.train
  layers = model.config.num_hidden_layers
  if t.trainable == "full":
    return model, tokenizer, nnx.Param
  if t.trainable == "top_layers":
    if not 0 < t.top_layers <= layers:
      raise ValueError(f"config.train.top_layers={t.top_layers} must be in [1, {layers}]")
    model.frozen_layers = layers - t.top_layers
    # Blocks are stacked [L, ...]: everything but the embedding/head is trainable here,
    # and the optimizer's freeze_layers stage zeroes the updates of the frozen slice.
    return model, tokenizer, nnx.All(nnx.Param, nnx.Not(nnx.PathContains("embed")),
                                     nnx.Not(nnx.PathContains("lm_head")))
  model.add_lora(t.lora_rank, t.lora_alpha, tuple(t.lora_targets), rngs=nnx.Rngs(config.seed))
  if mesh is not None:  # adapters are created after loading: place them too
    nnx.update(model, sharding.place_state(nnx.state(model), mesh))
  return model, tokenizer, nnx.OfType(models.LoRAParam)


def make_optimizer(config, model) -> optax.GradientTransformation:
  """Clip by global norm, AdamW (float32 master weights for bfloat16 parameters when
  config.train.float32_optimizer), then zero the updates of frozen blocks."""
  t = config.train
  schedule = (optax.linear_schedule(0.0, t.learning_rate, t.warmup_steps)
              if t.warmup_steps else t.learning_rate)
  adamw = optax.adamw(schedule, weight_decay=t.weight_decay)
  if t.float32_optimizer and config.model.dtype != "float32":
    adamw = float32_master(adamw)
  stages = [optax.clip_by_global_norm(t.max_grad_norm), adamw]
  if model.frozen_layers:
    stages.append(freeze_layers(model.config.num_hidden_layers, model.frozen_layers))
  return optax.chain(*stages)
