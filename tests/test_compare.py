"""amrsd.compare, the runner: resumability (no model, no training)."""

import json
import os
import shutil

import pytest

from amrsd import compare
from amrsd import config as config_lib
from amrsd.compare_plan import RUN_CONFIG

from tests.fixtures.comparison import finish, small_cfg


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
  (src / RUN_CONFIG).write_text(json.dumps({"train": {"steps": 4}}))
  launched = []
  status = compare.train_all(cfg, log=launched.append)
  assert status["grpo_seed0"] == "done"
  assert status["amrsd_seed0"].startswith("failed")
  assert status["grpo_seed0_long"].startswith("failed")   # copied, then the launch failed
  assert status["amrsd_seed0_long"] == "skipped: amrsd_seed0 is not finished"
  assert (tmp_path / "grpo_seed0_long" / "checkpoints" / "4" / "state").read_text() == "weights"
  assert (tmp_path / "grpo_seed0_long" / "metrics.jsonl").exists()
  saved = config_lib.get_config(str(tmp_path / "amrsd_seed0" / RUN_CONFIG))
  assert saved.train.steps == 4 and saved.workdir == str(tmp_path / "amrsd_seed0")
  assert not any("grpo_seed0:" in line for line in launched)
  # Once everything is finished, nothing is launched.
  finish(tmp_path / "amrsd_seed0", 4)
  finish(tmp_path / "grpo_seed0_long", 8)
  finish(tmp_path / "amrsd_seed0_long", 8)
  assert set(compare.train_all(cfg).values()) == {"done"}


@pytest.mark.slow
def test_score_all_scores_the_base_and_each_finished_run_once(tmp_path):
  """A real one-step GRPO run on SmolLM2-135M, then the scoring stage: the base model and
  the run answer the same held-out problems greedily and sampled; scores of the same
  checkpoint and settings are kept, other settings are redone."""
  from amrsd.compare_plan import BASE, SCORES
  cfg = small_cfg(tmp_path, methods=("grpo",), seeds=(0,), steps=1, long_steps=1)
  cfg.jax_cache_dir = ""
  r = cfg.run
  r.rollout.prompts_per_step, r.rollout.group_size, r.rollout.max_new_tokens = 2, 2, 4
  r.train.top_layers, r.eval.size, r.log.progress = 1, 2, False
  cfg.final_eval.size, cfg.final_eval.samples, cfg.final_eval.max_new_tokens = 4, 2, 4
  assert compare.train_all(cfg) == {"grpo_seed0": "done"}
  lines = []
  compare.score_all(cfg, log=lines.append)
  for name, step in ((BASE, 0), ("grpo_seed0", 1)):
    scores = json.loads((tmp_path / name / SCORES).read_text())
    heldout = scores["sets"]["heldout"]
    assert scores["step"] == step and heldout["problems"] == 4
    assert len(heldout["greedy"]) == 4 and set(heldout["greedy"]) <= {0, 1}
    assert [len(row) for row in heldout["sampled"]] == [2] * 4
  assert sum("scored grpo_seed0 (step 1) on heldout" in line for line in lines) == 1
  before = (tmp_path / BASE / SCORES).stat().st_mtime_ns
  again = []
  compare.score_all(cfg, log=again.append)
  assert again == [] and (tmp_path / BASE / SCORES).stat().st_mtime_ns == before
  cfg.final_eval.samples = 1
  compare.score_all(cfg, log=again.append)
  assert len(json.loads((tmp_path / BASE / SCORES).read_text())
             ["sets"]["heldout"]["sampled"][0]) == 1
