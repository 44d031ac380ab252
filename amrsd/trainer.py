"""The training loop: one RL step, prompt to update, and everything around it.

Per step: prompts from the data pipeline -> rollouts (Sampler) -> rewards (verifiers)
-> teacher contexts (reflection, per method) -> batch -> jitted train step -> metrics,
plots, checkpoints. Host code lives here; array work is in amrsd.algorithms.
"""

import dataclasses
import json
import math
import os
import signal
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from amrsd import config as config_lib
from amrsd import data as data_lib
from amrsd import distributed, models, prompts, reflection, rewards, rng, sharding
from amrsd.algorithms.config import AlgorithmConfig
from amrsd.algorithms.step import init_opt_state, make_train_step
from amrsd.checkpointing import Checkpointer, abstract_like
from amrsd.evaluate import evaluate_records
from amrsd.metrics import MetricsWriter, read_metrics
from amrsd.optimizer import float32_master
from amrsd.plot import plot_runs
from amrsd.rewards.extract import numeric_answer
from amrsd.rewards.registry import validate_name
from amrsd.sampling import Sampler

# Teacher contexts are padded to a power of two, at least this, so their width takes
# few values and the train step compiles a bounded number of times.
CONTEXT_BUCKET = 64


class TrainingError(RuntimeError):
  """A run that cannot go on (non-finite loss, ...); the last checkpoint is kept."""


def algorithm_config(config) -> AlgorithmConfig:
  a = config.algorithm
  anneal = a.anneal_steps if a.anneal_steps > 0 else max(1, config.train.steps // 2)
  return AlgorithmConfig(
      name=a.name, group_size=config.rollout.group_size, std_norm=a.std_norm,
      success_threshold=a.success_threshold, eps_lo=a.eps_lo, eps_hi=a.eps_hi,
      loss_agg=a.loss_agg, kl_coef=a.kl_coef, beta0=a.beta0, tau_pos=a.tau_pos,
      tau_neg=a.tau_neg, kappa=a.kappa, anneal_steps=anneal,
      anneal_schedule=a.anneal_schedule, cig_mode=a.cig_mode, gate=a.gate, sides=a.sides,
      lam0=a.lam0, eps_w=a.eps_w, sdpo_topk=a.sdpo_topk, sdpo_alpha=a.sdpo_alpha,
      sdpo_is_clip=a.sdpo_is_clip, opsd_beta=a.opsd_beta)


def open_sources(config, tokenizer=None):
  """(train source, held-out source) for config.data."""
  return data_lib.open_sources(config.data, seed=config.seed)


class Trainer:
  """Owns the model, sampler, optimizer, data and workdir of one run."""

  def __init__(self, config):
    config_lib.validate(config)
    self.config = config
    self.algo = algorithm_config(config)
    self.workdir = config.workdir
    try:
      os.makedirs(self.workdir, exist_ok=True)
    except OSError as e:
      raise OSError(f"cannot create workdir {self.workdir!r}: {e}") from e
    if not os.access(self.workdir, os.W_OK):
      raise PermissionError(f"workdir {self.workdir!r} is not writable; set --config.workdir")
    self.is_primary = jax.process_index() == 0

    # Cheap checks first: a bad verifier name or data file fails before the model loads.
    self.verifier = config.data.verifier
    validate_name(self.verifier)
    train_source, eval_source = open_sources(config)

    self.mesh = sharding.make_mesh(config.mesh.shape)
    # Everything below is built under the mesh, as is every training step (train()).
    with jax.set_mesh(self.mesh):
      # With several processes each takes its block of every batch's prompts (all read the
      # same pipeline, so its state is the same everywhere) and of the held-out set.
      self.block, self.blocks = sharding.row_block(self.mesh)
      if config.rollout.prompts_per_step % self.blocks:
        raise ValueError(f"config.rollout.prompts_per_step={config.rollout.prompts_per_step} must "
                         f"be a multiple of the {self.blocks} processes")
      path = config.model.path or models.default_model_path()
      dtype = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[config.model.dtype]
      self.model, self.tokenizer = models.load(path, dtype=dtype, mesh=self.mesh)
      if self.tokenizer is None:
        raise ValueError(f"{path}: the model folder has no tokenizer files; training needs one")
      self.model.remat = config.model.remat
      self.model.scan_layers = config.model.scan_layers
      trainable = self._configure_trainable()
      if self.model.lora_targets:  # adapters are created after loading: place them too
        nnx.update(self.model, sharding.place_state(nnx.state(self.model), self.mesh))
      self.sampler = Sampler(self.model, self.tokenizer, mesh=self.mesh,
                             prompt_buckets=tuple(config.rollout.prompt_buckets))
      self.templates = dict(config.prompts)
      self.pipeline = data_lib.PromptPipeline(
          train_source, self.tokenizer, prompts_per_step=config.rollout.prompts_per_step,
          seed=config.seed, prompt_template=self._task_template(),
          max_prompt_tokens=config.data.max_prompt_tokens)
      self.eval_records = self._local(
          [eval_source[i] for i in range(min(config.eval.size, len(eval_source)))])

      lr = config.train.learning_rate
      schedule = (optax.linear_schedule(0.0, lr, config.train.warmup_steps)
                  if config.train.warmup_steps else lr)
      adamw = optax.adamw(schedule, weight_decay=config.train.weight_decay)
      if config.train.float32_optimizer and config.model.dtype != "float32":
        adamw = float32_master(adamw)
      self.tx = optax.chain(optax.clip_by_global_norm(config.train.max_grad_norm), adamw,
                            *self._layer_mask())
      self.graphdef, self.params = nnx.split(self.model)
      self.trainable = trainable
      self.opt_state = init_opt_state(self.tx, self.params, trainable)
      self.train_step = make_train_step(self.graphdef, self.tx, self.algo, trainable=trainable,
                                        micro_batches=config.train.micro_batches)
      self.checkpointer = Checkpointer(self.workdir, keep=config.checkpoint.keep)
      self.step = 0
      self.last_eval = None
      self._stop_requested = False

  # -- setup helpers -------------------------------------------------------------------

  def _task_template(self):
    return self.templates.get("task", prompts.TEMPLATES["task"])

  def _configure_trainable(self):
    """The nnx filter of trained parameters (config.train.trainable)."""
    t = self.config.train
    layers = self.model.config.num_hidden_layers
    if t.trainable == "full":
      return nnx.Param
    if t.trainable == "top_layers":
      if not 0 < t.top_layers <= layers:
        raise ValueError(f"config.train.top_layers={t.top_layers} must be in [1, {layers}]")
      self.model.frozen_layers = layers - t.top_layers
      # Blocks are stacked [L, ...]: everything but the embedding/head is trainable here,
      # and _layer_mask zeroes the updates of the frozen slice.
      return nnx.All(nnx.Param, nnx.Not(nnx.PathContains("embed")),
                     nnx.Not(nnx.PathContains("lm_head")))
    self.model.add_lora(t.lora_rank, t.lora_alpha, tuple(t.lora_targets),
                        rngs=nnx.Rngs(self.config.seed))
    return nnx.OfType(models.LoRAParam)

  def _layer_mask(self):
    """An optax stage that zeroes updates of frozen blocks (stacked layer axis first)."""
    frozen = self.model.frozen_layers
    if not frozen:
      return ()
    layers = self.model.config.num_hidden_layers

    def mask(updates, state, params=None):
      del params
      def one(u):
        if u.ndim >= 1 and u.shape[0] == layers:
          keep = (jnp.arange(layers) >= frozen).astype(u.dtype)
          return u * keep.reshape((layers,) + (1,) * (u.ndim - 1))
        return u
      return jax.tree.map(one, updates), state

    return (optax.GradientTransformation(lambda params: optax.EmptyState(), mask),)

  # -- checkpoints ---------------------------------------------------------------------

  def _run_meta(self):
    return {"step": self.step, "data": self.pipeline.get_state(),
            "config": json.loads(self.config.to_json_best_effort())}

  def save(self):
    self.checkpointer.save(self.step, {"params": self.params, "opt_state": self.opt_state},
                           self._run_meta())

  def restore_latest(self) -> bool:
    latest = self.checkpointer.latest_step()
    if latest is None:
      return False
    abstract = abstract_like({"params": self.params, "opt_state": self.opt_state})
    state, meta = self.checkpointer.restore(latest, abstract)
    self.params, self.opt_state = state["params"], state["opt_state"]
    nnx.update(self.model, self.params)
    self.pipeline.set_state(meta["data"])
    self.step = int(meta["step"])
    return True

  # -- one step ------------------------------------------------------------------------

  def run_step(self) -> dict:
    """One RL step; returns its metrics (host floats, over every process's rows)."""
    c, k = self.config, self.step
    G = c.rollout.group_size
    times = {}
    t0 = time.perf_counter()
    records = self._local(next(self.pipeline))
    result = self.sampler.generate(
        [r["prompt_ids"] for r in records], n=G, max_new_tokens=c.rollout.max_new_tokens,
        temperature=c.rollout.temperature, top_p=c.rollout.top_p,
        seed=rng.stream(c.seed, k, "rollout"))
    times["time_sample"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    row_records = [records[i // G] for i in range(len(result.texts))]
    verdicts = rewards.verify_batch(self.verifier, result.texts, row_records)
    reward = np.array([v.reward for v in verdicts], np.float32)
    feedback = [v.feedback for v in verdicts]
    times["time_verify"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    teacher, host_stats = self._teacher_messages(records, result.texts, reward, feedback, k)
    times["time_reflect"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if teacher is not None:
      teacher = teacher_context_ids(result, teacher, self.tokenizer)
    longest = max(map(len, teacher[0])) if teacher is not None else 0
    batch = build_batch(result, reward, self.sampler.pad_id, teacher,
                        longest_context=int(distributed.gather(longest).max()))
    # Per row: reward, response length, clipped, tokens the update reads (student and
    # teacher, padding excluded); gathered so that host metrics cover every process.
    update_tokens = batch["student_mask"].sum(axis=1)
    if "teacher_mask" in batch:
      update_tokens = update_tokens + batch["teacher_mask"].sum(axis=1)
    per_row = np.stack([reward, result.completion_mask.sum(axis=1),
                        [r == "length" for r in result.stop_reasons], update_tokens], axis=1)
    per_row = distributed.gather(per_row.astype(np.float64)).reshape(-1, per_row.shape[1])
    batch = sharding.put_batch(self.mesh, batch)
    self.params, self.opt_state, metrics = self.train_step(
        self.params, self.opt_state, batch, jnp.int32(k))
    metrics = {name: float(v) for name, v in metrics.items()}
    times["time_update"] = time.perf_counter() - t0
    if metrics.get("update_skipped", 0.0) or not math.isfinite(metrics["loss"]):
      raise TrainingError(f"step {k}: non-finite loss or gradients (loss={metrics['loss']}); "
                          "the update was not applied and the last checkpoint is kept. "
                          "Lower train.learning_rate or check the data.")
    nnx.update(self.model, self.params)

    metrics.update(host_stats)
    metrics.update(times)
    all_reward, lengths, clipped, update_tokens = per_row.T
    metrics["reward_std"] = float(all_reward.std())
    metrics["response_length_max"] = float(lengths.max())
    metrics["response_clipped_fraction"] = float(clipped.mean())
    metrics["tokens_per_second_sample"] = float(lengths.sum() / max(times["time_sample"], 1e-9))
    metrics["tokens_per_second_update"] = float(update_tokens.sum() / max(times["time_update"], 1e-9))
    metrics["filtered_too_long"] = float(self.pipeline.stats["filtered_too_long"])
    self.step = k + 1
    return metrics

  def _local(self, items):
    """This process's contiguous share of a list that every process holds whole."""
    per = -(-len(items) // self.blocks)
    return items[self.block * per:(self.block + 1) * per]

  def _teacher_messages(self, records, texts, reward, feedback, step):
    """Teacher chat messages per rollout (None = no teacher) and reflection metrics."""
    c, G = self.config, self.config.rollout.group_size
    method = c.algorithm.name
    stats = {}
    if method == "grpo":
      return None, stats
    packets = reflection.diagnose(records, texts, reward, feedback, G,
                                  success_threshold=c.algorithm.success_threshold,
                                  peer_max_chars=c.reflection.peer_max_chars)
    hints = [None] * len(texts)
    if method == "amrsd" and c.reflection.teacher_context == "hint":
      def write(requests, attempt):
        key = jax.random.fold_in(rng.stream(c.seed, step, "reflect"), attempt)
        out = self.sampler.generate(requests, max_new_tokens=c.reflection.hint_max_tokens,
                                    temperature=c.reflection.hint_temperature, seed=key)
        return out.texts
      hints, rstats = reflection.reflect(
          write, records, texts, packets, G, granularity=c.reflection.hint_granularity,
          templates=self.templates, answer_of=numeric_answer, collective=self.blocks > 1)
      # Summed over processes: every process reflected on its own rollouts.
      rstats = reflection.ReflectionStats(
          *map(int, distributed.gather(dataclasses.astuple(rstats)).sum(axis=0)))
      stats = {"hints_made": rstats.hints_made, "hints_rejected": rstats.hints_rejected,
               "hints_retried": rstats.hints_retried, "hints_empty": rstats.hints_empty,
               "hint_length_mean": rstats.hint_length_mean,
               "hint_leak_rate": rstats.leak_rate,
               "hint_fraction": rstats.hints_made / (len(texts) * self.blocks)}
    teacher = reflection.teacher_contexts(method, records, packets, hints, G,
                                          teacher_context=c.reflection.teacher_context,
                                          templates=self.templates)
    return teacher, stats

  # -- evaluation and the loop ---------------------------------------------------------

  def evaluate(self) -> dict:
    c = self.config
    tokens = c.eval.max_new_tokens if c.eval.max_new_tokens > 0 else c.rollout.max_new_tokens
    greedy = evaluate_records(self.sampler, self.eval_records, self.verifier,
                              template=self._task_template(), samples=1,
                              max_new_tokens=tokens, temperature=0.0, seed=0)
    sampled = evaluate_records(self.sampler, self.eval_records, self.verifier,
                               template=self._task_template(), samples=1,
                               max_new_tokens=tokens, temperature=c.rollout.temperature,
                               seed=rng.stream(c.seed, self.step, "eval"))
    self.last_eval = {"eval_accuracy": greedy["avg@1"], "eval_accuracy_sampled": sampled["avg@1"]}
    return self.last_eval

  def request_stop(self, *_):
    self._stop_requested = True

  def train(self):
    """Runs (or resumes) to config.train.steps; returns the final evaluation."""
    with jax.set_mesh(self.mesh):
      return self._train()

  def _train(self):
    c = self.config
    resumed = self.restore_latest()
    if resumed and self.is_primary:
      print(f"resumed from step {self.step} of {c.train.steps} ({self.checkpointer.directory})",
            file=sys.stderr, flush=True)
    writer = MetricsWriter(self.workdir, resume_step=self.step, enabled=self.is_primary,
                           wandb_project=c.log.wandb_project, wandb_entity=c.log.wandb_entity,
                           run_config=c.to_dict())
    previous = signal.signal(signal.SIGTERM, self.request_stop)
    try:
      if not resumed:
        writer.write(0, self.evaluate())
      progress = _progress(c, self.step, self.is_primary)
      while self.step < c.train.steps:
        start = time.perf_counter()
        metrics = self.run_step()
        metrics["step_seconds"] = time.perf_counter() - start
        if self.step == c.train.steps or (c.eval.every_steps and
                                          self.step % c.eval.every_steps == 0):
          metrics.update(self.evaluate())
        writer.write(self.step, metrics)
        if progress is not None:
          progress.set_postfix(reward=f"{metrics['reward_mean']:.3f}",
                               acc=f"{metrics['accuracy']:.3f}")
          progress.update(1)
        # Saving is a collective: processes agree on a stop that reached any of them.
        stop = bool(distributed.gather(self._stop_requested).any())
        if self.step % c.checkpoint.every_steps == 0 or stop:
          self.save()
        if self.is_primary and self.step % c.log.plot_every_steps == 0:
          plot_runs([self.workdir], os.path.join(self.workdir, "plots"))
        if stop:
          self.checkpointer.wait()
          raise SystemExit(f"SIGTERM: saved step {self.step} to {self.checkpointer.directory}; "
                           "run the same command again to resume")
      if progress is not None:
        progress.close()
      if self.checkpointer.latest_step() != self.step:
        self.save()
      if self.last_eval is None:  # resumed at the end: the last evaluation is in the log
        self.last_eval = [r for r in read_metrics(writer.path) if "eval_accuracy" in r][-1]
      final = {"step": self.step,
               **{k: v for k, v in self.last_eval.items() if k.startswith("eval_")}}
      if self.is_primary:
        with open(os.path.join(self.workdir, "final_eval.json"), "w") as f:
          json.dump(final, f, indent=2)
        plot_runs([self.workdir], os.path.join(self.workdir, "plots"))
      return final
    finally:
      signal.signal(signal.SIGTERM, previous)
      self.checkpointer.close()
      writer.close()


def _progress(config, start, enabled):
  if not (enabled and config.log.progress):
    return None
  from tqdm import tqdm
  return tqdm(total=config.train.steps, initial=start, desc=config.algorithm.name, unit="step",
              dynamic_ncols=True)


def teacher_context_ids(result, teacher_messages, tokenizer):
  """(token ids of each row's teacher context, has_hint per row). A row without a teacher
  context (None) repeats its student prompt, real tokens only."""
  contexts, has_hint = [], []
  for row, messages in enumerate(teacher_messages):
    if messages is None:
      ids = result.prompt_ids[row][result.prompt_mask[row] > 0].tolist()
    else:
      text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
      ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    contexts.append(ids)
    has_hint.append(messages is not None)
  return contexts, has_hint


def build_batch(result, reward, pad_id, teacher=None, longest_context=None) -> dict:
  """Arrays for the train step (keys documented in amrsd.algorithms.step).

  Student rows: the sampler's left-padded prompt + the completion. teacher: None, or
  (contexts, has_hint) from teacher_context_ids. Teacher rows: the context, left-padded
  to a power of two >= CONTEXT_BUCKET and >= longest_context (default: the longest of
  these rows; processes pass the longest of all), + the same completion tokens, so
  response token t sits at the same offset from the end in both.
  """
  mask = result.completion_mask.astype(np.int32)
  completion = np.where(mask > 0, result.completion_ids, pad_id).astype(np.int32)
  batch = {
      "student_ids": np.concatenate([result.prompt_ids, completion], axis=1).astype(np.int32),
      "student_mask": np.concatenate([result.prompt_mask, mask], axis=1).astype(np.int32),
      "response_mask": mask.astype(np.float32),
      "logp_old": np.where(mask > 0, result.completion_logprobs, 0.0).astype(np.float32),
      "rewards": np.asarray(reward, np.float32),
  }
  if teacher is None:
    return batch
  contexts, has_hint = teacher
  if longest_context is None:
    longest_context = max(map(len, contexts))
  width = max(CONTEXT_BUCKET, 1 << (longest_context - 1).bit_length())
  ctx_ids = np.full((len(contexts), width), pad_id, np.int32)
  ctx_mask = np.zeros((len(contexts), width), np.int32)
  for row, ids in enumerate(contexts):
    ctx_ids[row, width - len(ids):] = ids
    ctx_mask[row, width - len(ids):] = 1
  batch["teacher_ids"] = np.concatenate([ctx_ids, completion], axis=1)
  batch["teacher_mask"] = np.concatenate([ctx_mask, mask], axis=1)
  batch["has_hint"] = np.asarray(has_hint, np.float32)
  return batch
