"""Two CPU processes on loopback form one JAX process group through launch/multi_gpu.sh."""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np

from tests.launch.two_process_worker import COLS, ROWS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT_S = 90


def test_two_processes_share_one_mesh():
  port = _free_port()
  env = {k: v for k, v in os.environ.items() if not k.startswith(("AMRSD_", "SLURM_"))}
  # Four fake devices per process, eight in the global mesh.
  env.update(JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=4")
  procs = [subprocess.Popen(
      ["bash", "launch/multi_gpu.sh", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
       "--process-id", str(i), "--init-timeout", "60", "--",
       sys.executable, "-m", "tests.launch.two_process_worker"],
      cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
      for i in range(2)]
  outputs = []
  try:
    deadline = time.monotonic() + TIMEOUT_S
    for proc in procs:
      out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
      assert proc.returncode == 0, f"process exited {proc.returncode}:\n{err[-3000:]}"
      outputs.append(json.loads(out.strip().splitlines()[-1]))
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
        proc.wait()

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


def _free_port():
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]
