"""Paper-scale comparison (accelerators only): python -m amrsd.compare --config=configs/compare_paper.py

The five methods on the configs/paper.py recipe: a Qwen3-8B class policy (model.path: a local
Hugging Face folder, e.g. Qwen/Qwen3-8B), math training data (run.data.train_path: JSONL of
{"problem", "answer"[, "solution"]}, e.g. DAPO-Math-17k), group 8, 64 prompts per step,
8192 new tokens, lr 1e-6, hints of 128 tokens per rollout, FSDP over every chip. Every
final checkpoint (and the base model) is scored on AIME24, AIME25, AMC23 and HMMT25 (Feb)
with avg@16 at temperature 0.6 (the sets shipped with amrsd, amrsd.data.BENCHMARKS); the
report gives bootstrap CIs over seeds and problems per benchmark.

Cost: 5 methods x 3 seeds x 500 steps plus long runs to 1000 steps on seed 0; each step
samples 512 responses of up to 8k tokens. Run it on a TPU slice or multi-GPU host (see
launch/): one command per host, e.g.
  python -m amrsd.compare --config=configs/compare_paper.py \
      --config.run.model.path=/ckpt/Qwen3-8B --config.run.data.train_path=/data/dapo17k.jsonl
Shorter check of the whole pipeline on the same hardware: --config.steps=20
--config.long_steps=0 --config.seeds='(0,)' --config.final_eval.samples=4.
"""

import importlib.util
import os

import ml_collections


def _paper_recipe(method):
  """configs/paper.py's get_config (loaded by path: configs/ is not a package)."""
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "paper.py")
  spec = importlib.util.spec_from_file_location("amrsd_paper_recipe", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(method)


def get_config():
  c = ml_collections.ConfigDict()
  c.out_dir = "runs/compare_paper"
  c.methods = ("grpo", "rlsd", "sdpo", "opsd", "amrsd")
  c.seeds = (0, 1, 2)
  c.steps = 500
  c.long_steps = 1000           # seed 0 continued; <= steps: no long-horizon runs
  c.long_seeds = (0,)
  c.collapse_margin = 0.05      # AIME-scale accuracies are small: 5 points is a collapse
  c.reward_level = 0.5          # report: first step whose trailing-mean reward reaches it
  c.python = ""
  c.jax_cache_dir = c.out_dir + "/jax_cache"

  c.final_eval = ml_collections.ConfigDict()
  c.final_eval.benchmarks = ("aime24", "aime25", "amc23", "hmmt25_feb")
  c.final_eval.size = 0         # 0 = every problem of each benchmark
  c.final_eval.samples = 16     # avg@16
  c.final_eval.temperature = 0.6
  c.final_eval.seed = 10_000
  c.final_eval.greedy = False   # avg@k at temperature 0.6 is the reported metric
  c.final_eval.max_new_tokens = -1  # = run.eval.max_new_tokens (8192)
  c.bootstrap = ml_collections.ConfigDict({"resamples": 2000, "seed": 0})

  r = _paper_recipe("amrsd")    # method, seed, steps, workdir are set per run
  r.eval.every_steps = 50
  r.eval.size = 30
  c.run = r
  # Variants as in configs/compare_cpu.py ({name: {"method", "seeds", "run": fields}});
  # none here: the oracle needs a procedural task, and ablations cost a full run each.
  c.variants = ml_collections.ConfigDict()
  return c
