"""Fair comparison of the five methods: python -m amrsd.compare --config=RECIPE [--stage=...]

RECIPE: configs/compare_cpu.py[:quick] (2-core CPU) or configs/compare_paper.py.
Every method trains with the same run config (model, data order, seeds, group size, token
budget, anneal horizon); only algorithm.name differs. Each (method, seed) run is a
subprocess `python -m amrsd.train` in out_dir/<method>_seed<s>/, so a killed comparison
resumes where it stopped: a run whose final_eval.json is at the configured step is skipped,
an unfinished one resumes from its own checkpoint. Long-horizon runs (<method>_seed<s>_long)
continue the finished main run's checkpoint to long_steps; with the anneal horizon pinned
and every random stream keyed on (seed, step), that equals a run trained from scratch.

Then every main run's final checkpoint (and the base model) is scored per problem on fixed
evaluation sets, so confidence intervals can resample problems and seeds, and
amrsd.compare_report writes out_dir/report.md with PNG figures from the files on disk.
Stages: all (default) | train | eval (score + report) | report (redraw only).

A single run can be reproduced from its saved config:
  python -m amrsd.train --config=amrsd/compare.py:OUT_DIR/<run>/run_config.json
"""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time

import ml_collections
import numpy as np

RUN_CONFIG = "run_config.json"
SCORES = "heldout_scores.json"
BASE = "base"


def get_config(path):
  """A run config saved by this module (lets this file serve as --config for amrsd.train).

  The saved values are laid over amrsd.config.default_config(), so a field added to the
  defaults after the file was written gets its default (a resumed comparison keeps working),
  and JSON lists become tuples where the default is a tuple."""
  from amrsd.config import default_config
  with open(path) as f:
    saved = json.load(f)
  config = default_config()
  _overlay(config, saved, path)
  return config


def _overlay(config, values, where, prefix=""):
  for key, value in values.items():
    if key not in config:
      config[key] = value            # free-form groups (prompts, task_args) take new keys
    elif isinstance(config[key], ml_collections.ConfigDict):
      if not isinstance(value, dict):
        raise ValueError(f"{where}: field {prefix}{key} must be a group, got {value!r}")
      _overlay(config[key], value, where, prefix=f"{prefix}{key}.")
    elif isinstance(config[key], tuple):
      config[key] = tuple(value)
    else:
      config[key] = value


# -- the plan --------------------------------------------------------------------------


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
  from amrsd.config import METHODS
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


def seed_long_run(out_dir, spec: RunSpec) -> bool:
  """Copies the finished main run's checkpoints and metrics into the long run's folder
  (once); False when the main run is not finished, so the long run cannot start."""
  target = os.path.join(out_dir, spec.name)
  if os.path.isdir(os.path.join(target, "checkpoints")):
    return True
  source = os.path.join(out_dir, spec.source)
  with open(os.path.join(source, RUN_CONFIG)) as f:
    source_steps = json.load(f)["train"]["steps"]
  if not is_finished(source, source_steps):
    return False
  tmp = target + ".partial"
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  shutil.copytree(os.path.join(source, "checkpoints"), os.path.join(tmp, "checkpoints"))
  shutil.copy(os.path.join(source, "metrics.jsonl"), os.path.join(tmp, "metrics.jsonl"))
  os.makedirs(target, exist_ok=True)
  for name in os.listdir(tmp):
    os.replace(os.path.join(tmp, name), os.path.join(target, name))
  os.rmdir(tmp)
  return True


def train_all(cfg, log=print) -> dict:
  """Runs (or resumes, or skips) every planned run; returns {name: status}."""
  env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
  if cfg.jax_cache_dir:
    # Every run compiles the same sampler and near-identical train steps: share them.
    env["JAX_COMPILATION_CACHE_DIR"] = os.path.abspath(cfg.jax_cache_dir)
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "1"
  python = cfg.python or sys.executable
  status = {}
  for spec in plan(cfg):
    workdir = os.path.join(cfg.out_dir, spec.name)
    if is_finished(workdir, spec.steps):
      status[spec.name] = "done"
      continue
    if spec.source and not seed_long_run(cfg.out_dir, spec):
      status[spec.name] = f"skipped: {spec.source} is not finished"
      log(f"[compare] {spec.name}: {status[spec.name]}")
      continue
    config = run_config(cfg, spec)
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, RUN_CONFIG)
    with open(path, "w") as f:
      f.write(config.to_json_best_effort(indent=2))
    command = [python, "-m", "amrsd.train", f"--config={os.path.abspath(__file__)}:{path}"]
    log(f"[compare] {spec.name}: training to step {spec.steps}")
    start = time.time()
    with open(os.path.join(workdir, "train.log"), "a") as out:
      rc = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    ok = rc == 0 and is_finished(workdir, spec.steps)
    status[spec.name] = "done" if ok else f"failed (exit {rc}; see {workdir}/train.log)"
    log(f"[compare] {spec.name}: {status[spec.name]} in {time.time() - start:.0f} s")
  return status


# -- scoring on fixed evaluation sets ---------------------------------------------------


def heldout_records(cfg, run_cfg) -> list[dict]:
  """The final_eval.size held-out problems every run is scored on (same for all runs)."""
  from amrsd.trainer import open_sources
  c = ml_collections.ConfigDict(run_cfg.to_dict())
  c.seed = cfg.final_eval.seed
  source = open_sources(c)[1]
  return [source[i] for i in range(min(cfg.final_eval.size, len(source)))]


def eval_sets(cfg, run_cfg, task_template) -> dict:
  """{set name: (records, verifier name, prompt template)}: final_eval.benchmarks (names
  of the sets shipped with amrsd, amrsd.data.BENCHMARKS) or, when that is empty, the task's
  own held-out split ("heldout")."""
  e = cfg.final_eval
  if not e.benchmarks:
    return {"heldout": (heldout_records(cfg, run_cfg), run_cfg.data.verifier, task_template)}
  from amrsd.data import BENCHMARKS, load_benchmark
  sets = {}
  for name in e.benchmarks:
    if name not in BENCHMARKS:
      raise ValueError(f"config.final_eval.benchmarks: unknown {name!r}; known: "
                       f"{', '.join(BENCHMARKS)}")
    records = load_benchmark(name)
    count = len(records) if e.size <= 0 else min(e.size, len(records))
    sets[name] = (records[:count], BENCHMARKS[name].verifier, BENCHMARKS[name].template)
  return sets


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


def score_all(cfg, log=print) -> None:
  """Scores the base model and every finished main run's final checkpoint on the evaluation
  sets (greedy and final_eval.samples samples per problem); writes
  <run>/heldout_scores.json, skipped when present for the same step and settings."""
  import tempfile

  from flax import nnx

  from amrsd.checkpointing import Checkpointer, abstract_like
  from amrsd.evaluate import score_records
  from amrsd.rng import stream
  from amrsd.trainer import Trainer
  # Long runs are judged on their own curves (collapse), not scored here.
  finished = [s for s in plan(cfg) if not s.source and
              is_finished(os.path.join(cfg.out_dir, s.name), s.steps)]
  todo = [(BASE, 0)] + [(s.name, s.steps) for s in finished]
  todo = [(n, k) for n, k in todo if not scores_current(
      os.path.join(cfg.out_dir, n, SCORES), cfg, k)]
  if not todo:
    return
  scratch = tempfile.mkdtemp(prefix="amrsd_compare_")
  try:
    # One model and sampler for every run: the runs differ only in their weights.
    c = run_config(cfg, plan(cfg)[0])
    c.workdir = scratch
    trainer = Trainer(c)
    sets = eval_sets(cfg, c, trainer._task_template())
    e = cfg.final_eval
    tokens = (e.max_new_tokens if e.max_new_tokens > 0 else
              c.eval.max_new_tokens if c.eval.max_new_tokens > 0 else c.rollout.max_new_tokens)
    for name, steps in todo:
      start = time.time()
      step = 0
      if name != BASE:
        ckpt = Checkpointer(os.path.join(cfg.out_dir, name), keep=c.checkpoint.keep)
        step = ckpt.latest_step()
        state, _ = ckpt.restore(step, abstract_like({"params": trainer.params,
                                                     "opt_state": trainer.opt_state}))
        ckpt.close()
        nnx.update(trainer.model, state["params"])
      out = {"run": name, "step": step, "settings": score_settings(cfg), "sets": {}}
      for set_name, (records, verifier, template) in sets.items():
        kwargs = dict(template=template, max_new_tokens=tokens)
        greedy = (score_records(trainer.sampler, records, verifier, samples=1, temperature=0.0,
                                seed=0, **kwargs)[:, 0].astype(int).tolist()
                  if e.greedy else None)
        sampled = score_records(trainer.sampler, records, verifier, samples=e.samples,
                                temperature=e.temperature, seed=stream(e.seed, 0, "eval"),
                                **kwargs)
        out["sets"][set_name] = {"problems": len(records), "greedy": greedy,
                                 "sampled": sampled.astype(int).tolist()}
        log(f"[compare] scored {name} (step {step}) on {set_name}: greedy "
            f"{np.mean(greedy) if greedy else float('nan'):.3f}, sampled avg@{e.samples} "
            f"{sampled.mean():.3f}")
      os.makedirs(os.path.join(cfg.out_dir, name), exist_ok=True)
      with open(os.path.join(cfg.out_dir, name, SCORES), "w") as f:
        json.dump(out, f)
      log(f"[compare] scored {name} in {time.time() - start:.0f} s")
  finally:
    shutil.rmtree(scratch, ignore_errors=True)


# -- entry point -----------------------------------------------------------------------

STAGES = ("all", "train", "eval", "report")


def machine_description() -> str:
  """e.g. "x86_64, 2 CPU cores, 24 GB RAM" (RAM from /proc/meminfo where there is one)."""
  import platform
  text = f"{platform.machine()}, {os.cpu_count()} CPU cores"
  try:
    with open("/proc/meminfo") as f:
      kb = int(f.readline().split()[1])
    text += f", {kb / 2**20:.0f} GB RAM"
  except (OSError, ValueError, IndexError):
    pass
  return text


def main(argv):
  from absl import app
  argv_all = sys.argv
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}; fields are set with "
                         "--config.<field>=<value>")
  cfg = _CONFIG.value
  stage = _STAGE.value
  validate(cfg)
  os.makedirs(cfg.out_dir, exist_ok=True)
  failed = []
  if stage in ("all", "train"):
    status = train_all(cfg)
    failed = [name for name, s in status.items() if s != "done"]
  if stage in ("all", "eval"):
    score_all(cfg)
  if stage in ("all", "eval", "report"):
    from amrsd.compare_report import write_report
    command = " ".join(["python -m amrsd.compare"] + argv_all[1:])
    print(write_report(cfg, header=f"Generated by `{command}` on {machine_description()}."))
  if failed:
    raise SystemExit(f"[compare] unfinished runs: {', '.join(failed)}; rerun the same command "
                     "to resume them")


if __name__ == "__main__":
  from absl import app, flags, logging
  logging.set_verbosity(logging.WARNING)
  from ml_collections import config_flags
  _CONFIG = config_flags.DEFINE_config_file(
      "config", None, "Comparison recipe, e.g. configs/compare_cpu.py:quick; override fields "
      "with --config.<field>=<value> (the training run's with --config.run.<field>=...).")
  flags.mark_flag_as_required("config")
  _STAGE = flags.DEFINE_enum("stage", "all", STAGES, "all: train, score, report; train: only "
                             "the runs; eval: score finished runs + report; report: only the "
                             "report from files on disk.")
  app.run(main)
