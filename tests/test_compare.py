"""amrsd.compare, the runner: resumability (no model, no training)."""

import json
import os
import shutil

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
