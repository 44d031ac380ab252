"""The comparison's plan: which runs, in which folders, with which configs, and what is done.

Read by the runner (amrsd.compare) and by the report (amrsd.compare_report), so both agree
on run names, file names and when a run or its scores are finished.
"""

import dataclasses
import json
import os

import ml_collections

RUN_CONFIG = "run_config.json"   # a run's amrsd.train config, written before it starts
SCORES = "heldout_scores.json"   # a run's per-problem scores on the evaluation sets
BASE = "base"                    # the folder of the untrained model's scores


@dataclasses.dataclass(frozen=True)
class RunSpec:
  """One training run: name (folder under out_dir), method, seed, steps, and for a
  long-horizon run the main run it continues (source, else None)."""
  name: str
  method: str
  seed: int
  steps: int
  source: str | None = None


def plan(cfg) -> list[RunSpec]:
  """Main runs seed-major (a partial comparison covers every method), then long runs."""
  runs = [RunSpec(f"{m}_seed{s}", m, int(s), cfg.steps) for s in cfg.seeds for m in cfg.methods]
  if cfg.long_steps > cfg.steps:
    runs += [RunSpec(f"{m}_seed{s}_long", m, int(s), cfg.long_steps, source=f"{m}_seed{s}")
             for s in cfg.long_seeds for m in cfg.methods]
  return runs


def validate(cfg) -> None:
  from amrsd.algorithms.config import METHODS
  unknown = [m for m in cfg.methods if m not in METHODS]
  if unknown or not cfg.methods:
    raise ValueError(f"config.methods={tuple(cfg.methods)}: choose from {', '.join(METHODS)}")
  if not cfg.seeds:
    raise ValueError("config.seeds is empty; give at least one seed, e.g. (0, 1)")
  if cfg.steps < 1:
    raise ValueError(f"config.steps={cfg.steps} must be >= 1")
  missing = [s for s in cfg.long_seeds if s not in tuple(cfg.seeds)]
  if cfg.long_steps > cfg.steps and missing:
    raise ValueError(f"config.long_seeds={tuple(cfg.long_seeds)}: seeds {missing} are not in "
                     f"config.seeds={tuple(cfg.seeds)} (a long run continues a main run)")
  if not 0 < cfg.collapse_margin < 1:
    raise ValueError(f"config.collapse_margin={cfg.collapse_margin} must be in (0, 1)")


def run_config(cfg, spec: RunSpec):
  """The amrsd.train config of one run: cfg.run with method, seed, steps and workdir set."""
  from amrsd import config as config_lib
  c = ml_collections.ConfigDict(cfg.run.to_dict())
  c.algorithm.name = spec.method
  c.seed = spec.seed
  c.train.steps = spec.steps
  c.workdir = os.path.join(cfg.out_dir, spec.name)
  # The anneal horizon is pinned to the main runs' so a long run is their continuation.
  if c.algorithm.anneal_steps <= 0:
    c.algorithm.anneal_steps = max(1, cfg.steps // 2)
  c.log.progress = False
  config_lib.validate(c)
  return c


def is_finished(workdir, steps) -> bool:
  """True when the run in workdir wrote its final evaluation at `steps`."""
  path = os.path.join(workdir, "final_eval.json")
  if not os.path.exists(path):
    return False
  try:
    with open(path) as f:
      return int(json.load(f).get("step", -1)) == steps
  except (json.JSONDecodeError, ValueError, OSError):
    return False


def score_settings(cfg) -> dict:
  """What a scores file was computed with; a file with other settings is redone."""
  e = cfg.final_eval
  return {"size": e.size, "k": e.samples, "temperature": e.temperature, "eval_seed": e.seed,
          "greedy": bool(e.greedy), "benchmarks": list(e.benchmarks),
          "max_new_tokens": e.max_new_tokens}


def scores_current(path, cfg, step) -> bool:
  """True when path holds scores of checkpoint `step` computed with cfg's settings."""
  if not os.path.exists(path):
    return False
  with open(path) as f:
    s = json.load(f)
  return s.get("step") == step and s.get("settings") == score_settings(cfg)
