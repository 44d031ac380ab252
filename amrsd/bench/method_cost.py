"""Benchmark: the whole step of each method against GRPO's, on the same rollouts.

    python -m amrsd.bench.method_cost [--config=configs/<recipe>.py] [--methods=grpo,amrsd]
        [--warmup=1] [--steps=3] [--config.<field>=<value> ...]

One Trainer per method (real model, tokenizer, data and verifier of the run config; a
comparison config's `run` group when it has one, e.g. configs/compare_cpu.py). Each
step the first method's trainer samples and verifies one batch of rollouts; every method
then reflects, runs its teacher and updates on those same rollouts (Trainer.learn), so
the ratios compare the methods' own work on equal inputs. Sampling and verification are
counted in every method's step. Compilation is not part of a step's cost: JAX reports
each compile's duration, and the bench subtracts it (steps that compiled are counted).

Prints per method the mean seconds per phase, compile seconds removed, the step cost
and its ratio to the first method (goals, issue #14: AMR-SD <= 1.3x GRPO in the default
job's shape, <= 2x in the comparison's top-layer recipe), and what reflection and the
teacher did (hint requests, cut-off and leaked hints, teacher rows needed / run).
"""

import os
import sys
import tempfile
import time

from absl import app, flags

from amrsd import config as config_lib
from amrsd.bench.compile_clock import CompileClock

_CONFIG = config_lib.define_config_flag(
    "amrsd.bench.method_cost", config_lib.__file__, "Run recipe (configs/*.py), or a "
    "comparison recipe whose `run` group is used; default: the embedded default job.")
_METHODS = flags.DEFINE_list("methods", ["grpo", "amrsd"], "Methods to time; the first one "
                             "samples the rollouts and is the reference of the ratios.")
_WARMUP = flags.DEFINE_integer("warmup", 1, "Untimed steps first (compilation, caches).")
_STEPS = flags.DEFINE_integer("steps", 3, "Timed steps.")

PHASES = ("time_sample", "time_verify", "time_reflect", "time_teacher", "time_update")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  import jax
  import numpy as np
  from amrsd.trainer import Trainer

  run = _CONFIG.value.run if "run" in _CONFIG.value else _CONFIG.value
  methods = _METHODS.value
  unknown = [m for m in methods if m not in config_lib.METHODS]
  if unknown:
    sys.exit(f"amrsd.bench.method_cost: unknown --methods {unknown}; choose from "
             f"{', '.join(config_lib.METHODS)}")
  clock = CompileClock()
  trainers = {}
  with tempfile.TemporaryDirectory(prefix="method_cost_") as tmp:
    for m in methods:
      c = run.copy_and_resolve_references()
      c.algorithm.name = m
      c.workdir = os.path.join(tmp, m)
      c.log.progress = False
      c.train.steps = max(c.train.steps, _WARMUP.value + _STEPS.value)
      trainers[m] = Trainer(c)
    first = trainers[methods[0]]
    c = first.config
    print(f"{jax.devices()[0].device_kind} x {jax.device_count()}, "
          f"{c.model.path or 'default model'}, trainable={c.train.trainable}, "
          f"{c.rollout.prompts_per_step} prompts x {c.rollout.group_size} samples x "
          f"{c.rollout.max_new_tokens} tokens, hints per "
          f"{c.reflection.hint_granularity} of <= {c.reflection.hint_max_tokens} tokens "
          f"({c.reflection.hint_source})", flush=True)
    rows = {m: [] for m in methods}
    try:
      with jax.set_mesh(first.mesh):
        for step in range(_WARMUP.value + _STEPS.value):
          clock.take()
          rollouts = first.rollouts()
          shared = clock.take()
          for m, trainer in trainers.items():
            start = time.perf_counter()
            metrics = trainer.learn(rollouts)
            metrics["step"] = time.perf_counter() - start + sum(rollouts.times.values())
            metrics["compile"] = clock.take() + shared
            timed = step >= _WARMUP.value
            if timed:
              rows[m].append(metrics)
            print(f"  step {step}{'' if timed else ' (warm-up)'} {m}: "
                  f"{metrics['step']:.2f} s, compile {metrics['compile']:.2f} s, reward "
                  f"{metrics['reward_mean']:.3f}", flush=True)
    finally:
      for trainer in trainers.values():
        trainer.close()

  print(f"\nmean of {_STEPS.value} timed steps, seconds; phases as timed, compile = JAX's "
        "compilation within them, step = the whole step without it:")
  print(f"{'method':8s} " + " ".join(f"{p[5:]:>8s}" for p in PHASES) +
        f" {'compile':>8s} {'step':>8s} {'ratio':>6s}")
  cost = {}
  for m in methods:
    mean = lambda key: float(np.mean([r.get(key, 0.0) for r in rows[m]]))
    cost[m] = mean("step") - mean("compile")
    print(f"{m:8s} " + " ".join(f"{mean(p):8.2f}" for p in PHASES) +
          f" {mean('compile'):8.2f} {cost[m]:8.2f} {cost[m] / cost[methods[0]]:6.2f}")
  for m in methods:
    total = lambda key: int(sum(r.get(key, 0) for r in rows[m]))
    compiled = sum(r["compile"] > 0.05 for r in rows[m])
    line = f"{m}: {compiled} of {len(rows[m])} timed steps compiled"
    if "teacher_rows" in rows[m][0]:
      all_rows = len(rows[m]) * c.rollout.prompts_per_step * c.rollout.group_size
      line += (f"; teacher rows needed {total('teacher_rows_needed')}, run "
               f"{total('teacher_rows')} (of {all_rows})")
    if "hint_requests" in rows[m][0]:
      line += (f"; hint requests {total('hint_requests')}: cut off {total('hints_unfinished')}, "
               f"leaked {total('hints_rejected')}, hints {total('hints_made')} rows, mean "
               f"{np.mean([r['hint_tokens_mean'] for r in rows[m]]):.1f} tokens")
    print(line)
  for m in methods[1:]:
    print(f"ratio {m} / {methods[0]}: {cost[m] / cost[methods[0]]:.2f}")


if __name__ == "__main__":
  from absl import logging
  logging.set_verbosity(logging.WARNING)
  app.run(main)
