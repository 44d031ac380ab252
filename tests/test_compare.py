"""amrsd.compare: statistics against hand computations, collapse detection, resumability and
the report generator on metrics/score files written here (no model, no training)."""

import importlib.util
import json
import os
import shutil

import numpy as np
import pytest

from amrsd import compare, data
from amrsd import compare_report as report
from amrsd.config import validate as validate_run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_recipe(name, *args):
  spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "configs", name + ".py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(*args)


def small_cfg(out_dir, methods=("grpo", "amrsd"), seeds=(0, 1), steps=4, long_steps=8):
  cfg = load_recipe("compare_cpu", "quick")
  cfg.out_dir = str(out_dir)
  cfg.methods = methods
  cfg.seeds = seeds
  cfg.steps = steps
  cfg.long_steps = long_steps
  cfg.bootstrap.resamples = 500
  return cfg


# -- statistics ---------------------------------------------------------------------------


def test_wilson_matches_hand_computation():
  # 8 of 10, z = 1.96: center (0.8 + z^2/20) / (1 + z^2/10), half-width
  # z sqrt(0.016 + z^2/400) / (1 + z^2/10) -> [0.4902, 0.9433] (textbook value).
  lo, hi = report.wilson(8, 10)
  assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
  lo, hi = report.wilson(0, 20)
  assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(0.1611, abs=1e-4)
  with pytest.raises(ValueError, match="n=0"):
    report.wilson(0, 0)


def test_bootstrap_degenerate_and_seed_resampling():
  assert report.bootstrap_ci(np.ones((2, 30))) == (1.0, 1.0, 1.0)
  # One seed all right, one all wrong: resampled seed pairs give means 0, 0.5, 1 with
  # probabilities 1/4, 1/2, 1/4, so the 2.5 % / 97.5 % quantiles are 0 and 1.
  mean, lo, hi = report.bootstrap_ci(np.stack([np.ones(40), np.zeros(40)]), resamples=4000)
  assert (mean, lo, hi) == (0.5, 0.0, 1.0)


def test_bootstrap_width_matches_binomial_standard_error():
  rng = np.random.default_rng(1)
  scores = (rng.random((1, 400)) < 0.3).astype(float)
  p = scores.mean()
  mean, lo, hi = report.bootstrap_ci(scores, resamples=4000, seed=3)
  assert mean == p and lo < p < hi
  assert hi - lo == pytest.approx(2 * 1.96 * np.sqrt(p * (1 - p) / 400), rel=0.12)


def test_paired_difference():
  a = np.array([[1, 0, 1, 1], [0, 1, 1, 0]], float)
  assert report.paired_difference_ci(a, a) == (0.0, 0.0, 0.0)
  mean, lo, hi = report.paired_difference_ci(a, np.zeros_like(a), resamples=500)
  assert mean == pytest.approx(0.625) and 0 <= lo <= mean <= hi <= 1
  with pytest.raises(ValueError, match="same seeds"):
    report.paired_difference_ci(a, a[:1])


def test_moving_average_and_collapse():
  np.testing.assert_allclose(report.moving_average([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5])
  late_drop = report.collapse([0, 4, 8, 12], [0.2, 0.5, 0.6, 0.45], margin=0.1)
  assert late_drop == {"best": 0.6, "best_step": 8, "final": 0.45, "final_step": 12,
                       "drop": pytest.approx(0.15), "collapsed": True}
  assert not report.collapse([0, 4, 8], [0.2, 0.6, 0.55], margin=0.1)["collapsed"]
  assert report.collapse([0, 4], [0.3, 0.7], margin=0.1)["drop"] == 0.0
  with pytest.raises(ValueError, match="equally long"):
    report.collapse([0, 1], [0.1], margin=0.1)


# -- plan, configs, resumability -----------------------------------------------------------


def test_plan_and_run_config_round_trip(tmp_path):
  cfg = small_cfg(tmp_path)
  names = [s.name for s in compare.plan(cfg)]
  assert names == ["grpo_seed0", "amrsd_seed0", "grpo_seed1", "amrsd_seed1",
                   "grpo_seed0_long", "amrsd_seed0_long"]
  long = compare.plan(cfg)[-1]
  c = compare.run_config(cfg, long)
  assert (c.algorithm.name, c.seed, c.train.steps) == ("amrsd", 0, 8)
  # Pinned to the main runs' horizon, so the long run continues them exactly.
  assert c.algorithm.anneal_steps == 2
  path = tmp_path / "run.json"
  path.write_text(c.to_json_best_effort())
  loaded = compare.get_config(str(path))
  validate_run(loaded)
  assert json.loads(loaded.to_json_best_effort()) == json.loads(c.to_json_best_effort())
  assert loaded.data.task_args.levels == (1, 2, 3)
  # A file written before a field existed gets the field's default.
  saved = json.loads(c.to_json_best_effort())
  del saved["train"]["warmup_steps"]
  path.write_text(json.dumps(saved))
  loaded = compare.get_config(str(path))
  assert loaded.train.warmup_steps == 0 and loaded.seed == 0 and loaded.train.steps == 8
  path.write_text(json.dumps({"train": 3}))
  with pytest.raises(ValueError, match="field train must be a group"):
    compare.get_config(str(path))


def test_validate_names_bad_fields(tmp_path):
  cfg = small_cfg(tmp_path)
  cfg.methods = ("grpo", "ppo")
  with pytest.raises(ValueError, match="config.methods"):
    compare.validate(cfg)
  cfg = small_cfg(tmp_path)
  cfg.long_seeds = (5,)
  with pytest.raises(ValueError, match="long_seeds"):
    compare.validate(cfg)
  with pytest.raises(ValueError, match="quick"):
    load_recipe("compare_cpu", "fast")


def test_paper_recipe_is_complete():
  cfg = load_recipe("compare_paper")
  compare.validate(cfg)
  c = compare.run_config(cfg, compare.plan(cfg)[0])
  assert c.model.dtype == "bfloat16" and c.rollout.max_new_tokens == 8192
  assert set(cfg.final_eval.benchmarks) == {"aime24", "aime25", "amc23", "hmmt25_feb"}
  # Every set comes from the package, with no data folder beside the checkout.
  sets = compare.eval_sets(cfg, c, c.prompts.task)
  assert {name: len(records) for name, (records, _, _) in sets.items()} == {
      "aime24": 30, "aime25": 30, "amc23": 40, "hmmt25_feb": 30}
  assert len(data.open_dataset(c.data.eval_path)) == 30  # the recipe's held-out set: aime24


def finish(workdir, steps):
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "final_eval.json"), "w") as f:
    json.dump({"step": steps, "eval_accuracy": 0.5}, f)


def test_train_all_skips_finished_runs_and_seeds_long_runs(tmp_path):
  cfg = small_cfg(tmp_path, seeds=(0,))
  # A program that fails at once stands for a crashed training process.
  cfg.python = shutil.which("false")
  finish(tmp_path / "grpo_seed0", 4)
  finish(tmp_path / "amrsd_seed0", 3)            # finished for another step count: redo
  src = tmp_path / "grpo_seed0"
  os.makedirs(src / "checkpoints" / "4")
  (src / "checkpoints" / "4" / "state").write_text("weights")
  (src / "metrics.jsonl").write_text('{"step": 0, "eval_accuracy": 0.25}\n')
  (src / compare.RUN_CONFIG).write_text(json.dumps({"train": {"steps": 4}}))
  launched = []
  status = compare.train_all(cfg, log=launched.append)
  assert status["grpo_seed0"] == "done"
  assert status["amrsd_seed0"].startswith("failed")
  assert status["grpo_seed0_long"].startswith("failed")   # copied, then the launch failed
  assert status["amrsd_seed0_long"] == "skipped: amrsd_seed0 is not finished"
  assert (tmp_path / "grpo_seed0_long" / "checkpoints" / "4" / "state").read_text() == "weights"
  assert (tmp_path / "grpo_seed0_long" / "metrics.jsonl").exists()
  saved = compare.get_config(str(tmp_path / "amrsd_seed0" / compare.RUN_CONFIG))
  assert saved.train.steps == 4 and saved.workdir == str(tmp_path / "amrsd_seed0")
  assert not any("grpo_seed0:" in line for line in launched)
  # Once everything is finished, nothing is launched.
  finish(tmp_path / "amrsd_seed0", 4)
  finish(tmp_path / "grpo_seed0_long", 8)
  finish(tmp_path / "amrsd_seed0_long", 8)
  assert set(compare.train_all(cfg).values()) == {"done"}


# -- the report ------------------------------------------------------------------------------


def write_run(out_dir, name, steps, reward, eval_points, greedy=None, sampled=None, extra=None):
  workdir = os.path.join(out_dir, name)
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
    f.write(json.dumps({"step": 0, "eval_accuracy": eval_points.get(0, 0.1),
                        "eval_accuracy_sampled": 0.1}) + "\n")
    for k in range(1, steps + 1):
      row = {"step": k, "reward_mean": reward[k - 1], "response_length_mean": 5.0 + k,
             "step_seconds": 2.0, "time_sample": 0.5, "time_verify": 0.01,
             "time_reflect": 0.4, "time_update": 1.0, **(extra or {})}
      if k in eval_points:
        row.update(eval_accuracy=eval_points[k], eval_accuracy_sampled=eval_points[k] / 2)
      f.write(json.dumps(row) + "\n")
  with open(os.path.join(workdir, compare.RUN_CONFIG), "w") as f:
    json.dump({"train": {"steps": steps}}, f)
  finish(workdir, steps)
  if greedy is not None:
    with open(os.path.join(workdir, compare.SCORES), "w") as f:
      json.dump({"run": name, "step": steps, "sets": {"heldout": {
          "problems": len(greedy), "greedy": greedy, "sampled": sampled}}}, f)


def test_report_on_synthetic_runs(tmp_path):
  cfg = small_cfg(tmp_path)
  g0, g1 = [1, 0, 1, 1, 0, 1, 0, 1], [1, 1, 1, 0, 0, 1, 0, 1]   # grpo seeds: 5/8 each
  a0, a1 = [1, 1, 1, 1, 0, 1, 0, 1], [1, 1, 1, 1, 1, 1, 0, 1]   # amrsd: 6/8, 7/8
  sampled = [[1, 0]] * 8
  write_run(tmp_path, "grpo_seed0", 4, [0.1, 0.2, 0.3, 0.4], {4: 0.5}, g0, sampled)
  write_run(tmp_path, "grpo_seed1", 4, [0.1, 0.3, 0.3, 0.5], {4: 0.6}, g1, sampled)
  write_run(tmp_path, "amrsd_seed0", 4, [0.2, 0.3, 0.4, 0.5], {4: 0.7}, a0, sampled,
            extra={"gate_fraction": 0.3, "cig_mean_pos": 0.2, "hint_leak_rate": 0.1})
  write_run(tmp_path, "amrsd_seed1", 4, [0.2, 0.4, 0.4, 0.6], {4: 0.7}, a1, sampled,
            extra={"gate_fraction": 0.5, "cig_mean_pos": 0.4, "hint_leak_rate": 0.3})
  # Long runs: grpo holds its level, amrsd peaks at step 4 and ends 0.3 lower.
  write_run(tmp_path, "grpo_seed0_long", 8, [0.4] * 8, {4: 0.5, 8: 0.5})
  write_run(tmp_path, "amrsd_seed0_long", 8, [0.5] * 8, {4: 0.7, 8: 0.4})
  os.makedirs(tmp_path / compare.BASE)
  (tmp_path / compare.BASE / compare.SCORES).write_text(json.dumps({"step": 0, "sets": {
      "heldout": {"problems": 8, "greedy": [1, 0] * 4, "sampled": [[0, 0]] * 8}}}))
  path = report.write_report(cfg, header="Command: test")
  text = open(path).read()
  assert "Runs finished: 6 of 6." in text and "Command: test" in text
  # greedy means: grpo 10/16 = 0.625, amrsd 13/16 = 0.8125 (hand counts above)
  grpo_line = next(line for line in text.splitlines() if line.startswith("| grpo |"))
  amrsd_line = next(line for line in text.splitlines() if line.startswith("| amrsd |"))
  assert "| 0.625 [" in grpo_line and "0.625, 0.625" in grpo_line
  assert "| 0.812 [" in amrsd_line and "0.750, 0.875" in amrsd_line
  assert "| base model | - | 0.500 | - |" in text
  lo, hi = report.wilson(10, 16)
  assert f"[{lo:.3f}, {hi:.3f}]" in grpo_line
  assert "| amrsd - grpo | 2 | 0.188 [" in text
  assert "**Result (heldout):** AMR-SD has the highest mean greedy accuracy (0.812)" in text
  assert "AMR-SD - GRPO = +0.188 [" in text
  long_lines = {line.split(" |")[0][2:]: line for line in text.splitlines()
                if "_long |" in line}
  assert "| 0.700 (4) | 0.400 | 0.300 | yes |" in long_lines["amrsd_seed0_long"]
  assert "| 0.500 (4) | 0.500 | 0.000 | no |" in long_lines["grpo_seed0_long"]
  assert "| gate_fraction | 0.400 |" in text     # seed mean over the first half
  table = []
  for line in text.splitlines() + [""]:
    if line.startswith("|"):
      table.append(line.count("|"))
    elif table:
      assert len(set(table)) == 1, f"a table's rows have different column counts: {table}"
      table = []
  figures = sorted(os.listdir(tmp_path / "figures"))
  assert figures == ["amrsd_signals.png", "final_accuracy_heldout.png", "hints.png",
                     "learning_curves.png", "long_horizon.png", "response_length.png",
                     "wall_time.png"]
  for name in figures:
    data = (tmp_path / "figures" / name).read_bytes()
    assert data[:4] == b"\x89PNG" and len(data) < 200_000


def test_report_verdict_on_a_tie_and_a_loss(tmp_path):
  cfg = small_cfg(tmp_path, methods=("grpo", "rlsd", "amrsd"), seeds=(0,), long_steps=0)
  same = [1, 0, 1, 1]
  write_run(tmp_path, "grpo_seed0", 4, [0.1] * 4, {4: 0.5}, same, [[1]] * 4)
  write_run(tmp_path, "rlsd_seed0", 4, [0.1] * 4, {4: 0.5}, [0, 0, 1, 0], [[1]] * 4)
  write_run(tmp_path, "amrsd_seed0", 4, [0.1] * 4, {4: 0.5}, same, [[0]] * 4)
  text = open(report.write_report(cfg)).read()
  assert "AMR-SD ties with grpo for the highest mean greedy accuracy (0.750)" in text
  (tmp_path / "grpo_seed0" / compare.SCORES).write_text(json.dumps({"step": 4, "sets": {
      "heldout": {"problems": 4, "greedy": [1, 1, 1, 1], "sampled": [[1]] * 4}}}))
  text = open(report.write_report(cfg)).read()
  assert "AMR-SD does not win: grpo has the highest mean greedy accuracy (1.000 vs 0.750)" in text


def test_report_on_partial_results(tmp_path):
  cfg = small_cfg(tmp_path)
  write_run(tmp_path, "grpo_seed0", 4, [0.1, 0.2, 0.3, 0.4], {4: 0.5})
  os.makedirs(tmp_path / "amrsd_seed0")
  with open(tmp_path / "amrsd_seed0" / "metrics.jsonl", "w") as f:
    f.write(json.dumps({"step": 0, "eval_accuracy": 0.3}) + "\n")
    f.write(json.dumps({"step": 1, "reward_mean": 0.2}) + "\n")
  text = open(report.write_report(cfg)).read()
  assert "Runs finished: 1 of 6." in text
  assert "amrsd_seed0, grpo_seed1" in text
  assert "No run has been scored yet" in text and "No long-horizon run has finished" in text
  assert (tmp_path / "figures" / "learning_curves.png").exists()
