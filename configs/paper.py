"""Paper-scale recipe (accelerators only): --config=configs/paper.py:METHOD.

Qwen3-8B class policy, group 8, lr 1e-6, hints of 128 tokens at temperature 0.7 written
per rollout (docs/algorithms.md defaults), math training data with a symbolic verifier, and
AIME/AMC/HMMT held out. Point model.path at a local Hugging Face folder (e.g. a download
of Qwen/Qwen3-8B or Qwen/Qwen2.5-7B-Instruct) and data.train_path at a JSONL of
{"problem", "answer"[, "solution"]} rows (e.g. DAPO-Math-17k or the MATH train split).
"""

from amrsd.config import METHODS, default_config


def get_config(method="amrsd"):
  if method not in METHODS:
    raise ValueError(f"configs/paper.py:{method}: choose one of {', '.join(METHODS)}")
  c = default_config()
  c.workdir = f"runs/paper_{method}"
  c.model.path = "checkpoints/Qwen3-8B"   # a local HF folder; nothing is downloaded
  c.model.dtype = "bfloat16"
  c.model.remat = "full"                  # 8B activations at 8k tokens do not fit otherwise

  c.data.task = "jsonl"
  c.data.train_path = "data/math_train.jsonl"
  c.data.eval_path = "aime24"              # the AIME 2024 set shipped with amrsd
  c.data.dataset = "math"
  c.data.verifier = "math"
  c.data.max_prompt_tokens = 1024
  c.prompts.task = "{problem}\n\nPut your final answer in \\boxed{{}}."

  c.algorithm.name = method
  c.algorithm.anneal_steps = -1           # AMR-SD's K_anneal: half of the run
  c.algorithm.rlsd_anneal_steps = 50      # RLSD's own K [paper]: GRPO after 50 steps
  c.algorithm.eps_hi = 0.28               # DAPO clip-higher
  c.reflection.hint_max_tokens = 128
  c.reflection.hint_temperature = 0.7
  c.reflection.hint_granularity = "rollout"

  c.rollout.group_size = 8
  c.rollout.prompts_per_step = 64
  c.rollout.max_new_tokens = 8192
  c.rollout.temperature = 1.0

  c.train.steps = 500
  c.train.learning_rate = 1e-6
  c.train.warmup_steps = 10
  c.train.trainable = "full"
  c.checkpoint.every_steps = 25
  c.checkpoint.keep = 3
  c.eval.every_steps = 50
  c.eval.size = 30
  c.eval.max_new_tokens = 8192
  c.mesh.shape = (1, -1, 1)               # FSDP over every chip of the slice
  return c
