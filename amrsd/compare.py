"""Fair comparison of the five methods: python -m amrsd.compare --config=RECIPE [--stage=...]

RECIPE: configs/compare_cpu.py[:quick] (2-core CPU) or configs/compare_paper.py.
Every method trains with the same run config (model, data order, seeds, group size, token
budget, anneal horizon); only algorithm.name differs. Each (method, seed) run is a
subprocess `python -m amrsd.train` in out_dir/<method>_seed<s>/, so a killed comparison
resumes where it stopped: a run whose final_eval.json is at the configured step is skipped,
an unfinished one resumes from its own checkpoint. Long-horizon runs (<method>_seed<s>_long)
continue the finished main run's checkpoint to long_steps; with the anneal horizon pinned
and every random stream keyed on (seed, step), that equals a run trained from scratch.
Variants (config.variants: a method with run fields changed, e.g. oracle hints or an
ablation) run the same way in out_dir/<variant>_seed<s>/ on some of the main seeds.

Then every main run's final checkpoint (and the base model) is scored per problem on fixed
evaluation sets, so confidence intervals can resample problems and seeds, and
amrsd.compare_report writes out_dir/report.md with PNG figures from the files on disk.
Stages: all (default) | train | eval (score + report) | report (redraw only).

A single run can be reproduced from its saved config:
  python -m amrsd.train --config=amrsd/config.py:OUT_DIR/<run>/run_config.json
"""

import json
import os
import shutil
import subprocess
import sys
import time

import ml_collections
import numpy as np
from absl import app, flags, logging

from amrsd import config as config_lib
from amrsd.compare_plan import (BASE, RUN_CONFIG, SCORES, RunSpec, is_finished, plan,
                                run_config, score_settings, scores_current, validate)

_CONFIG = config_lib.define_config_flag(
    "amrsd.compare", None, "Comparison recipe, e.g. configs/compare_cpu.py:quick; override "
    "fields with --config.<field>=<value> (the training run's with --config.run.<field>=...).")
_STAGE = flags.DEFINE_enum("stage", "all", ("all", "train", "eval", "report"),
                           "all: train, score, report; train: only the runs; eval: score "
                           "finished runs + report; report: only the report from files on disk.")


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
    command = [python, "-m", "amrsd.train",
               f"--config={os.path.abspath(config_lib.__file__)}:{path}"]
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
  from amrsd.run_setup import open_sources
  c = ml_collections.ConfigDict(run_cfg.to_dict())
  c.seed = cfg.final_eval.seed
  source = open_sources(c)[1]
  return [source[i] for i in range(min(cfg.final_eval.size, len(source)))]


def eval_sets(cfg, run_cfg) -> dict:
  """{set name: (records, verifier name, prompt template)}: final_eval.benchmarks (names
  of the sets shipped with amrsd, amrsd.data.BENCHMARKS) or, when that is empty, the task's
  own held-out split ("heldout")."""
  from amrsd.run_setup import task_template
  e = cfg.final_eval
  if not e.benchmarks:
    return {"heldout": (heldout_records(cfg, run_cfg), run_cfg.data.verifier,
                        task_template(run_cfg))}
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


def score_all(cfg, log=print) -> None:
  """Scores the base model and every finished main run's final checkpoint on the evaluation
  sets (greedy and final_eval.samples samples per problem); writes
  <run>/heldout_scores.json, skipped when present for the same step and settings."""
  import jax
  from flax import nnx

  from amrsd import sharding
  from amrsd.checkpointing import abstract_like, read_latest_meta, restore_params
  from amrsd.rng import stream
  from amrsd.run_setup import load_policy
  from amrsd.sampling import Sampler
  from amrsd.scoring import score_records
  # Long runs are judged on their own curves (collapse), not scored here.
  finished = [s for s in plan(cfg) if not s.source and
              is_finished(os.path.join(cfg.out_dir, s.name), s.steps)]
  todo = [(BASE, 0)] + [(s.name, s.steps) for s in finished]
  todo = [(n, k) for n, k in todo if not scores_current(
      os.path.join(cfg.out_dir, n, SCORES), cfg, k)]
  if not todo:
    return
  # One model and sampler for every run: the runs differ only in their weights.
  c = run_config(cfg, plan(cfg)[0])
  sets = eval_sets(cfg, c)
  mesh = sharding.make_mesh(c.mesh.shape)
  with jax.set_mesh(mesh):
    model, tokenizer, _ = load_policy(c, mesh)
  sampler = Sampler(model, tokenizer, mesh=mesh, prompt_buckets=tuple(c.rollout.prompt_buckets))
  initial = nnx.state(model)
  e = cfg.final_eval
  tokens = (e.max_new_tokens if e.max_new_tokens > 0 else
            c.eval.max_new_tokens if c.eval.max_new_tokens > 0 else c.rollout.max_new_tokens)
  for name, steps in todo:
    start = time.time()
    step = 0
    if name != BASE:
      workdir = os.path.join(cfg.out_dir, name)
      step, _ = read_latest_meta(workdir)
      nnx.update(model, restore_params(workdir, step, abstract_like(initial)))
    out = {"run": name, "step": step, "settings": score_settings(cfg), "sets": {}}
    for set_name, (records, verifier, template) in sets.items():
      kwargs = dict(template=template, max_new_tokens=tokens)
      greedy = (score_records(sampler, records, verifier, samples=1, temperature=0.0,
                              seed=0, progress=f"{name} {set_name} greedy",
                              **kwargs)[:, 0].astype(int).tolist()
                if e.greedy else None)
      sampled = score_records(sampler, records, verifier, samples=e.samples,
                              temperature=e.temperature, seed=stream(e.seed, 0, "eval"),
                              progress=f"{name} {set_name} sampled", **kwargs)
      out["sets"][set_name] = {"problems": len(records), "greedy": greedy,
                               "sampled": sampled.astype(int).tolist()}
      log(f"[compare] scored {name} (step {step}) on {set_name}: greedy "
          f"{np.mean(greedy) if greedy else float('nan'):.3f}, sampled avg@{e.samples} "
          f"{sampled.mean():.3f}")
    os.makedirs(os.path.join(cfg.out_dir, name), exist_ok=True)
    with open(os.path.join(cfg.out_dir, name, SCORES), "w") as f:
      json.dump(out, f)
    log(f"[compare] scored {name} in {time.time() - start:.0f} s")


# -- entry point -----------------------------------------------------------------------

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
  logging.set_verbosity(logging.ERROR)  # orbax warns that a read-only manager saves nothing
  flags.mark_flag_as_required("config")
  app.run(main)
