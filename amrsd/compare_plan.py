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
  """One training run: name (folder under out_dir), method, seed, steps, for a
  long-horizon run the main run it continues (source, else None), and for a variant its
  name in cfg.variants (variant, else None)."""
  name: str
  method: str
  seed: int
  steps: int
  source: str | None = None
  variant: str | None = None

  @property
  def label(self) -> str:
    """What the report groups seeds by: the variant's name, else the method."""
    return self.variant or self.method


def labels(cfg) -> list[str]:
  """The methods, then the variants that run (seeds () switches one off): the report's rows."""
  return list(cfg.methods) + [n for n, v in cfg.variants.items() if v.seeds]


def plan(cfg) -> list[RunSpec]:
  """Main runs seed-major (a partial comparison covers every method), with the variants
  that run on every seed (the oracle check); then variants on fewer seeds (ablations);
  then long runs. A variant's run uses the main runs' seeds, so it shares their data
  order and rollout random streams."""
  def variant_runs(name, seeds):
    v = cfg.variants[name]
    return [RunSpec(f"{name}_seed{s}", v.method, int(s), cfg.steps, variant=name)
            for s in seeds if s in tuple(v.seeds)]
  everywhere = [n for n, v in cfg.variants.items() if set(v.seeds) >= set(cfg.seeds)]
  runs = []
  for s in cfg.seeds:
    runs += [RunSpec(f"{m}_seed{s}", m, int(s), cfg.steps) for m in cfg.methods]
    runs += [r for n in everywhere for r in variant_runs(n, (s,))]
  runs += [r for n in cfg.variants if n not in everywhere for r in variant_runs(n, cfg.seeds)]
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
  if not 0 < cfg.reward_level <= 1:
    raise ValueError(f"config.reward_level={cfg.reward_level} must be in (0, 1]")
  for name, v in cfg.variants.items():
    where = f"config.variants.{name}"
    if name in METHODS or "_seed" in name:
      raise ValueError(f"{where}: a variant's name must differ from the methods' and not "
                       "hold '_seed' (run folders are <name>_seed<s>)")
    if v.method not in METHODS:
      raise ValueError(f"{where}.method={v.method!r}: choose from {', '.join(METHODS)}")
    extra = [s for s in v.seeds if s not in tuple(cfg.seeds)]
    if extra:
      raise ValueError(f"{where}.seeds={tuple(v.seeds)} must be some of config.seeds="
                       f"{tuple(cfg.seeds)} (a variant is paired with the main runs' seeds)")
    _check_fields(cfg.run, v.run.to_dict(), f"{where}.run")


def _check_fields(run, values: dict, where: str) -> None:
  """Every field a variant sets exists in the run config (a misspelt one would be added
  silently by config.overlay)."""
  for key, value in values.items():
    if key not in run:
      raise ValueError(f"{where}.{key} is not a field of the run config")
    if isinstance(value, dict) and isinstance(run[key], ml_collections.ConfigDict):
      _check_fields(run[key], value, f"{where}.{key}")


def run_config(cfg, spec: RunSpec):
  """The amrsd.train config of one run: cfg.run with the variant's fields, method, seed,
  steps and workdir set."""
  from amrsd import config as config_lib
  c = ml_collections.ConfigDict(cfg.run.to_dict())
  if spec.variant:
    config_lib.overlay(c, cfg.variants[spec.variant].run.to_dict(),
                       f"config.variants.{spec.variant}.run")
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
