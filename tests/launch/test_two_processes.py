"""Two CPU processes on loopback form one JAX process group through launch/multi_gpu.sh:
they share one mesh, and two training steps of amrsd.train across them, killed after the
first checkpoint and resumed, match the same run in one process uninterrupted."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
import pytest

from tests.launch.two_process_worker import COLS, ROWS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MESH_TIMEOUT_S = 90
TRAIN_TIMEOUT_S = 600
# Two AMR-SD steps of the real model, small: 4 prompts x 4 samples (two prompts per
# process), hints written where the rollouts are, the top 4 blocks trained, a checkpoint
# after each step. Seed 0's first step has groups with mixed rewards (a real update).
LEARNING_RATE = 1e-5
TRAIN_FLAGS = [f"--config.train.learning_rate={LEARNING_RATE}", "--config.train.steps=2",
               "--config.rollout.prompts_per_step=4", "--config.rollout.group_size=4", "--config.rollout.max_new_tokens=16",
               "--config.reflection.hint_max_tokens=16", "--config.eval.size=4",
               "--config.train.trainable=top_layers", "--config.train.top_layers=4",
               "--config.checkpoint.every_steps=1", "--config.log.progress=False",
               "--config.mesh.shape=(2,4,1)"]
COMPARED = ("loss", "grad_norm", "reward_mean", "accuracy", "hints_made", "eval_accuracy",
            "eval_accuracy_sampled", "response_length_max")


def test_two_processes_share_one_mesh():
  port = _free_port()
  # The worker's JSON line; gloo (CPU collectives) prints its own lines too.
  outputs = [json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
             for out, _ in _run_two(port, ["--", sys.executable, "-m", "tests.launch.two_process_worker"],
                                    timeout_s=MESH_TIMEOUT_S)]

  batch = np.arange(ROWS * COLS, dtype=np.float32).reshape(ROWS, COLS)
  for pid, result in enumerate(outputs):
    assert result["group"] == [f"127.0.0.1:{port}", 2, pid]
    assert result["same_group_again"]
    assert result["process_index"] == pid
    assert result["process_count"] == 2
    assert (result["device_count"], result["local_device_count"]) == (8, 4)
    assert result["is_primary"] == (pid == 0)
    assert result["sum_of_squares"] == float(np.sum(batch * batch))
    np.testing.assert_array_equal(result["column_sums"], batch.sum(axis=0))
    assert result["row_block"] == [pid, 2]
    assert result["local_rows_round_trip"]
    assert result["gathered"] == [[0, 10], [1, 10]]
    assert "each process must hold its own block of batch rows" in result["replicated_rows_error"]


def test_two_processes_killed_and_resumed_train_like_one(tmp_path):
  two, one = tmp_path / "two", tmp_path / "one"
  args = ["--python", sys.executable, f"--config.workdir={two}", *TRAIN_FLAGS]
  # A preempted slice: both processes SIGKILLed once step 1's checkpoint is on disk, then
  # the same command again.
  _run_two(_free_port(), args, timeout_s=TRAIN_TIMEOUT_S,
           kill_when=lambda: (two / "checkpoints" / "1").is_dir())
  (_, err), _ = _run_two(_free_port(), args, timeout_s=TRAIN_TIMEOUT_S)
  assert "resumed from step 1 of 2" in err, err[-3000:]
  env = _clean_env(devices=8)
  done = subprocess.run([sys.executable, "-m", "amrsd.train", f"--config.workdir={one}",
                         *TRAIN_FLAGS], cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=TRAIN_TIMEOUT_S)
  assert done.returncode == 0, done.stderr[-3000:]
  _assert_same_run(two, one)


def _assert_same_run(two, one):
  """The logs, final evaluations and step-2 weights of two workdirs agree."""
  rows_two, rows_one = _metrics(two), _metrics(one)
  # Only process 0 writes the log: one row per evaluation/step, not two.
  assert [r["step"] for r in rows_two] == [r["step"] for r in rows_one] == [0, 1, 2]
  for a, b in zip(rows_two, rows_one):
    for key in COMPARED:
      if key in b:
        assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), (a["step"], key)
  # A real step that asked for hints (at 16 tokens the 135M model's hints are often cut
  # off, and cut-off hints are refused, so hints_made may be 0).
  assert rows_one[1]["grad_norm"] > 0 and rows_one[1]["hint_requests"] > 0
  assert json.loads((two / "final_eval.json").read_text()) == pytest.approx(
      json.loads((one / "final_eval.json").read_text()), rel=1e-4)
  params_two, params_one = _checkpoint_params(two, 2), _checkpoint_params(one, 2)
  assert jax.tree.structure(params_two) == jax.tree.structure(params_one)
  # Adam's first step moves every weight by about +-lr, whatever its gradient's size, so
  # a weight whose gradient is float noise can land one step apart. A few may; a wrong
  # batch or a missing gradient term would move most.
  entries = differing = 0
  for a, b in zip(jax.tree.leaves(params_two), jax.tree.leaves(params_one)):
    assert np.abs(a - b).max() <= 2 * 2 * LEARNING_RATE  # two steps, opposite signs
    entries += a.size
    differing += int(np.sum(np.abs(a - b) > 1e-6 + 1e-5 * np.abs(b)))
  assert differing <= 1e-6 * entries, f"{differing} of {entries} weights differ"


def _run_two(port, args, *, timeout_s, kill_when=None):
  """Runs launch/multi_gpu.sh as processes 0 and 1 on loopback; returns their (stdout, stderr).

  kill_when: a condition polled while they run; once it holds both get SIGKILL.
  """
  env = _clean_env(devices=4)  # eight devices in the global mesh
  with tempfile.TemporaryDirectory() as logs:
    # Files, not pipes: nobody reads a pipe while the processes run, and a full one stalls them.
    files = [(open(f"{logs}/{i}.out", "w+"), open(f"{logs}/{i}.err", "w+")) for i in range(2)]
    procs = [subprocess.Popen(
        ["bash", "launch/multi_gpu.sh", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
         "--process-id", str(i), "--init-timeout", "60", *args],
        cwd=REPO, env=env, stdout=out, stderr=err, text=True) for i, (out, err) in enumerate(files)]
    read = lambda f: (f.seek(0), f.read())[1]
    try:
      deadline = time.monotonic() + timeout_s
      while kill_when is not None and not kill_when():
        ended = [read(err) for p, (_, err) in zip(procs, files) if p.poll() is not None]
        assert not ended, "a process ended before the kill:\n" + ended[0][-3000:]
        assert time.monotonic() < deadline, "the kill condition never held"
        time.sleep(0.2)
      outputs = []
      for proc, (out, err) in zip(procs, files):
        if kill_when is not None:
          proc.kill()
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        assert kill_when or proc.returncode == 0, \
            f"process exited {proc.returncode}:\n{read(err)[-3000:]}"
        outputs.append((read(out), read(err)))
      return outputs
    finally:
      for proc in procs:
        if proc.poll() is None:
          proc.kill()
          proc.wait()
      for out, err in files:
        out.close()
        err.close()


def _clean_env(*, devices):
  env = {k: v for k, v in os.environ.items() if not k.startswith(("AMRSD_", "SLURM_"))}
  env.update(JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  return env


def _metrics(workdir):
  return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def _checkpoint_params(workdir, step):
  """The saved parameters of one step as numpy arrays, whatever mesh saved them."""
  import orbax.checkpoint as ocp
  path = workdir / "checkpoints" / str(step) / "state"
  with ocp.PyTreeCheckpointer() as checkpointer:
    metadata = checkpointer.metadata(path).item_metadata.tree
    restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), metadata)
    return checkpointer.restore(path, args=ocp.args.PyTreeRestore(restore_args=restore_args))["params"]


def _free_port():
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]
