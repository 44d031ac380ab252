"""Faults through the real CLI (python -m amrsd.train) on the real model, tiny shapes: the
exit code, a message that names what and where, and nothing lost (metric history, the
last good checkpoint). One finished run is shared: each test copies its workdir."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from amrsd.metrics import read_metrics
from tests.conftest import REPO
from tests.test_workdir_lock import hold_in_subprocess

pytestmark = pytest.mark.slow
TIMEOUT_S = 900


# Two GRPO steps of 2 prompts x 4 samples (8 new tokens: seed 0's second step has a
# group with reward variance, so its gradient is not 0), a checkpoint after each step.
FLAGS = ["--config.algorithm.name=grpo", "--config.train.steps=2",
         "--config.train.trainable=top_layers", "--config.train.top_layers=1",
         "--config.rollout.prompts_per_step=2", "--config.rollout.group_size=4",
         "--config.rollout.max_new_tokens=8", "--config.eval.size=2",
         "--config.checkpoint.every_steps=1", "--config.log.plot_every_steps=100",
         "--config.log.progress=False"]


def _cmd(workdir, *extra):
  return [sys.executable, "-m", "amrsd.train", f"--config.workdir={workdir}", *FLAGS, *extra]


def _env():
  return dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO), XLA_FLAGS="")


def _run(workdir, *extra):
  return subprocess.run(_cmd(workdir, *extra), env=_env(), cwd=REPO, capture_output=True,
                        text=True, timeout=TIMEOUT_S)


def _steps(workdir):
  return [r["step"] for r in read_metrics(str(workdir / "metrics.jsonl"))]


def _checkpoints(workdir):
  return sorted(int(n) for n in os.listdir(workdir / "checkpoints") if n.isdigit())


def _copy(finished, tmp_path):
  shutil.copytree(finished["workdir"], tmp_path / "run")
  return tmp_path / "run"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  """A finished two-step run; while it ran, a second trainer was started on its workdir."""
  root = tmp_path_factory.mktemp("cli")
  workdir = root / "run"
  with open(root / "first.err", "w") as err:
    first = subprocess.Popen(_cmd(workdir), env=_env(), cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=err)
    lock = workdir / "trainer.lock"
    deadline = time.time() + TIMEOUT_S
    while not (lock.exists() and str(first.pid) in lock.read_text()):
      assert first.poll() is None and time.time() < deadline, (root / "first.err").read_text()
      time.sleep(0.2)
    start = time.perf_counter()
    second = _run(workdir)
    second_seconds = time.perf_counter() - start
    still_running = first.poll() is None
    first.wait(timeout=TIMEOUT_S)
  return dict(root=root, workdir=workdir, code=first.returncode,
              err=(root / "first.err").read_text(), second=second,
              second_seconds=second_seconds, first_still_running=still_running)


def test_a_finished_run_keeps_its_history_and_a_good_checkpoint(finished):
  assert finished["code"] == 0, finished["err"][-3000:]
  assert _steps(finished["workdir"]) == [0, 1, 2]
  assert _checkpoints(finished["workdir"]) == [1, 2]
  # DESIGN's metrics.jsonl contract, for every training step's row.
  for row in read_metrics(str(finished["workdir"] / "metrics.jsonl"))[1:]:
    assert {"step", "reward_mean", "accuracy", "loss", "step_seconds"} <= set(row)
  # Step 2's rollouts and gradient passed the guard: they confirm step 1's weights.
  good = json.loads((finished["workdir"] / "checkpoints" / "last_good.json").read_text())
  assert good == {"step": 1}
  # Each step's first group, as the run saw it (GRPO writes no hints).
  samples = read_metrics(str(finished["workdir"] / "samples.jsonl"))
  assert [(r["step"], r["group"], len(r["rollouts"])) for r in samples] == [(1, 0, 4), (2, 0, 4)]
  for row in samples:
    assert row["problem"].startswith("What is") and row["gold"]
    for rollout in row["rollouts"]:
      assert rollout["reward"] in (0.0, 1.0) and rollout["feedback"] and rollout["hint"] is None
      assert isinstance(rollout["completion"], str)


def test_a_second_trainer_on_the_workdir_is_refused_naming_the_holder(finished):
  second = finished["second"]
  assert finished["first_still_running"]
  assert second.returncode != 0
  assert (f"WorkdirBusyError: workdir '{finished['workdir']}' is in use by another trainer "
          f"(pid ") in second.stderr
  assert "Traceback" not in second.stderr


def test_a_resume_that_changes_the_run_is_refused_in_one_message(finished, tmp_path):
  workdir = _copy(finished, tmp_path)
  out = _run(workdir, "--config.algorithm.name=amrsd", "--config.train.trainable=lora",
             "--config.model.dtype=bfloat16", "--config.train.steps=3")
  assert out.returncode != 0
  last = out.stderr.strip().splitlines()[-1]
  assert last.startswith("amrsd.train: ConfigChangeError: the config differs from the one the "
                         f"run in '{workdir}' was saved with (step 2)")
  for change in ("algorithm.name: 'grpo' -> 'amrsd'", "model.dtype: 'float32' -> 'bfloat16'",
                 "train.trainable: 'top_layers' -> 'lora'"):
    assert change in last
  assert "train.steps" not in last and "Traceback" not in out.stderr
  assert _checkpoints(workdir) == [1, 2] and _steps(workdir) == [0, 1, 2]


def test_a_stale_lock_and_a_damaged_metrics_line_lose_nothing_on_resume(finished, tmp_path):
  workdir = _copy(finished, tmp_path)
  lines = (workdir / "metrics.jsonl").read_text().splitlines()
  lines.insert(2, lines[2][: len(lines[2]) // 2])    # a torn copy of step 2's row
  (workdir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
  holder = hold_in_subprocess(workdir)
  holder.send_signal(signal.SIGKILL)
  holder.wait()
  out = _run(workdir)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "resumed from step 2 of 2" in out.stderr
  assert f"{workdir / 'metrics.jsonl'}:3: skipping a damaged metrics line" in out.stderr
  assert _steps(workdir) == [0, 1, 2]


def test_no_restorable_checkpoint_is_one_message_naming_the_folders(finished, tmp_path):
  workdir = _copy(finished, tmp_path)
  for step in (1, 2):
    os.remove(workdir / "checkpoints" / str(step) / "state" / "_METADATA")
  out = _run(workdir)
  assert out.returncode != 0
  last = out.stderr.strip().splitlines()[-1]
  assert last.startswith("amrsd.train: CheckpointError: no checkpoint restores: "
                         f"{workdir / 'checkpoints' / '2'}: ")
  assert f"; {workdir / 'checkpoints' / '1'}: " in last and "Traceback" not in out.stderr
  assert _steps(workdir) == [0, 1, 2]


@pytest.fixture(scope="module")
def diverged(finished, tmp_path_factory):
  """The finished run with its latest checkpoint truncated, resumed at learning rate 1e6."""
  workdir = _copy(finished, tmp_path_factory.mktemp("diverged"))
  state = workdir / "checkpoints" / "2" / "state"
  largest = max((p for p in state.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
  os.truncate(largest, largest.stat().st_size // 2)
  return workdir, _run(workdir, "--config.train.learning_rate=1e6", "--config.train.steps=3")


def test_a_damaged_latest_checkpoint_falls_back_to_the_previous(diverged):
  workdir, out = diverged
  assert f"checkpoint step 2 does not restore ({workdir / 'checkpoints' / '2'}: " in out.stderr
  assert "resumed from step 1 of 3" in out.stderr
  assert (workdir / "damaged_checkpoints" / "2").is_dir()


def test_a_huge_learning_rate_stops_at_the_diverged_step_keeping_the_good_checkpoint(
    diverged, finished):
  workdir, out = diverged
  assert "warning: config.train.learning_rate=1e+06 is far outside" in out.stderr
  assert "resume: config.train.learning_rate: 1e-05 -> 1000000.0" in out.stderr
  assert out.returncode != 0
  last = out.stderr.strip().splitlines()[-1]
  assert last.startswith("amrsd.train: TrainingError: divergence at step 2: "
                         "update_norm / param_norm = "), out.stderr[-3000:]
  assert "(threshold 0.1)" in last and "Lower train.learning_rate (now 1e+06)" in last
  assert f"the last good checkpoint is step 1 in {workdir / 'checkpoints'}" in last
  # The diverged step's row is logged; it is not saved, and the good checkpoint stays.
  assert _steps(workdir) == [0, 1, 2]
  assert _checkpoints(workdir) == [1]
  assert json.loads((workdir / "checkpoints" / "diverged.json").read_text())["step"] == 2
  # Resumed at step 1: the first run's step-2 group was replaced by the same group again.
  samples = read_metrics(str(workdir / "samples.jsonl"))
  assert [r["step"] for r in samples] == [1, 2]
  assert samples[1]["problem"] == read_metrics(
      str(finished["workdir"] / "samples.jsonl"))[1]["problem"]


def test_bad_files_are_named(tmp_path):
  good = b'{"problem": "What is 1 + 1?", "answer": "2", "task": "arithmetic"}\n'
  train, held_out = tmp_path / "train.jsonl", tmp_path / "eval.jsonl"
  files = [f"--config.data.train_path={train}", f"--config.data.eval_path={held_out}",
           "--config.data.task=jsonl"]
  train.write_bytes(good + b'{"problem": "What is 2 \xd7 2?", "answer": "4", '
                           b'"task": "arithmetic"}\n')
  held_out.write_bytes(good)
  outs = [_run(tmp_path / "run", *files)]
  assert f"{train}:2: field '<row>': not UTF-8 (byte 0xd7 at column 24)" in outs[-1].stderr

  # A 5 MB held-out problem: judged by its length, named at once (no minute of tokenizing).
  train.write_bytes(good)
  held_out.write_text(json.dumps({"problem": "What is 1 + 1? " * 350_000, "answer": "2",
                                  "task": "arithmetic"}) + "\n")
  outs.append(_run(tmp_path / "run", *files))
  assert (f"every held-out prompt is longer than data.max_prompt_tokens=256: {held_out}:1"
          in outs[-1].stderr)

  cut = tmp_path / "cut.gguf"
  from amrsd.models import default_model_path
  with open(default_model_path(), "rb") as f:
    cut.write_bytes(f.read(30_000_000))
  outs.append(_run(tmp_path / "other", f"--config.model.path={cut}"))
  assert f"ValueError: {cut}: not a readable GGUF file" in outs[-1].stderr
  for out in outs:
    assert out.returncode != 0 and "Traceback" not in out.stderr
