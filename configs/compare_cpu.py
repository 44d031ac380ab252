"""CPU comparison of the five methods: --config=configs/compare_cpu.py[:VARIANT] of amrsd.compare.

SmolLM2-135M-Instruct on two- and three-term one-digit addition/subtraction (arithmetic
levels 1-3: level 3 starts near 3 % greedy, so the curves have room to differ), the top 4 of 30 blocks trained
(no backward pass below them), 4 prompts x 8 samples, hints of 48 tokens written per group.
Every method gets the same run config; only algorithm.name differs. Variants of AMR-SD
on the same seeds and rollout streams (docs/algorithms.md 3.2): the mechanism check with
hints written by the task's generator (amrsd_oracle, every seed) and the ablations
symmetric gate, no annealing, raw reference in place of the hint and the EMA teacher
(seed 0).

Variants (2-core x86-64 CPU, no accelerator):
  full  (default) 3 seeds x 16 steps, 16 new tokens, long runs to 40 steps on seed 0,
        final scoring on 256 held-out problems x (greedy + 4 samples): about two and a
        half hours on a quiet CPU. Measured for docs/results/cpu/ (with long runs to 32,
        amrsd_oracle left out): 90 min of training and 27 of scoring; amrsd_oracle's three
        seeds add about 20 min (docs/results/cpu_oracle/), long runs to 40 about 10.
  quick 2 seeds x 12 steps, 12 new tokens, long runs to 20 steps on seed 0, 128 problems
        x (greedy + 2 samples): about an hour on a CPU shared with one other job; what
        the first report (2026-11-26) ran.
"""

import ml_collections

from amrsd.config import default_config

VARIANTS = ("full", "quick")


def get_config(variant="full"):
  if variant not in VARIANTS:
    raise ValueError(f"configs/compare_cpu.py:{variant}: choose one of {', '.join(VARIANTS)}")
  c = ml_collections.ConfigDict()
  c.out_dir = f"runs/compare_cpu_{variant}"
  c.methods = ("grpo", "rlsd", "sdpo", "opsd", "amrsd")
  c.seeds = (0, 1, 2) if variant == "full" else (0, 1)
  c.steps = 16 if variant == "full" else 12
  c.long_steps = 40 if variant == "full" else 20   # <= steps: no long-horizon runs
  c.long_seeds = (0,)
  c.collapse_margin = 0.10      # collapse: held-out accuracy ends this far below its best
  c.reward_level = 0.5          # report: first step whose trailing-mean reward reaches it
  c.python = ""                 # interpreter for the training subprocesses; "" = this one
  c.jax_cache_dir = c.out_dir + "/jax_cache"  # persistent compilation cache shared by runs

  c.final_eval = ml_collections.ConfigDict()
  c.final_eval.size = 256 if variant == "full" else 128  # one fixed held-out set for all runs
  c.final_eval.samples = 4 if variant == "full" else 2   # sampled answers per problem
  c.final_eval.temperature = 1.0
  c.final_eval.seed = 10_000    # held-out draw seed (splits are disjoint by content)
  c.final_eval.greedy = True    # also score one greedy answer per problem
  c.final_eval.max_new_tokens = -1  # -1 = the runs' eval/rollout budget
  c.final_eval.benchmarks = ()  # names of amrsd.data.BENCHMARKS; () = the task's held-out split
  c.bootstrap = ml_collections.ConfigDict({"resamples": 2000, "seed": 0})

  r = default_config()          # configs/cpu.py; method, seed, steps, workdir set per run
  r.data.task_args.levels = (1, 2, 3)
  r.rollout.prompts_per_step = 4
  r.rollout.group_size = 8
  # quick: 12 tokens clipped about 65 % of the responses (docs/results/cpu/), which caps
  # the reward; full gives the answers room.
  r.rollout.max_new_tokens = 16 if variant == "full" else 12
  r.train.trainable = "top_layers"
  r.train.top_layers = 4
  r.train.learning_rate = 3e-5  # 4 of 30 blocks move; 1e-5 barely moves them in 12 steps
  # RLSD keeps its own horizon (the paper's K), not scaled to these short runs: its lam_k
  # is still 0.68 lam0 at step 16, while AMR-SD's beta_k reaches 0 at half of the run.
  r.algorithm.rlsd_anneal_steps = 50
  r.eval.size = 64
  r.eval.every_steps = 4
  r.checkpoint.every_steps = 4
  r.log.plot_every_steps = 1000  # per-run plots only at the end; the report draws the rest
  c.run = r

  # Variants: a method with run fields changed, on some of the seeds (() = not run).
  ablation_seeds = (0,)
  c.variants = ml_collections.ConfigDict({
      # Hints from the task's generator (amrsd/data/oracle.py): what the gate does when
      # the hint carries information, which the 135M model's own hints do not.
      "amrsd_oracle": {"method": "amrsd", "seeds": c.seeds,
                       "run": {"reflection": {"hint_source": "oracle"}}},
      "amrsd_symgate": {"method": "amrsd", "seeds": ablation_seeds,
                        "run": {"algorithm": {"tau_neg": r.algorithm.tau_pos}}},
      "amrsd_noanneal": {"method": "amrsd", "seeds": ablation_seeds,
                         "run": {"algorithm": {"anneal_schedule": "none"}}},
      "amrsd_rawref": {"method": "amrsd", "seeds": ablation_seeds,
                       "run": {"reflection": {"teacher_context": "raw_reference"}}},
      # The teacher on an EMA of the weights (SDPO's teacher) instead of the current ones.
      "amrsd_ema": {"method": "amrsd", "seeds": ablation_seeds,
                    "run": {"algorithm": {"teacher_weights": "ema"}}},
  })
  return c
