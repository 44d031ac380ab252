"""One trainer per workdir: a live holder refuses the next, a killed one does not."""

import os
import signal
import subprocess
import sys
import time

import pytest

from amrsd.workdir_lock import WorkdirBusyError, acquire, lock_path
from tests.conftest import REPO

HOLD = "import sys, time; from amrsd.workdir_lock import acquire; h = acquire(sys.argv[1]); " \
       "print('held', flush=True); time.sleep(600)"


def hold_in_subprocess(workdir):
  """A process that holds the workdir's lock until killed."""
  proc = subprocess.Popen([sys.executable, "-c", HOLD, str(workdir)], cwd=REPO,
                          stdout=subprocess.PIPE, text=True)
  assert proc.stdout.readline().strip() == "held"
  return proc


def test_a_live_holder_is_named_and_a_killed_one_releases(tmp_path):
  holder = hold_in_subprocess(tmp_path)
  try:
    with pytest.raises(WorkdirBusyError, match=rf"in use by another trainer \(pid {holder.pid} "
                                               "on host .*, started"):
      acquire(str(tmp_path))
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  # The lock file stays, naming the dead holder; the kernel released the lock itself.
  assert str(holder.pid) in open(lock_path(str(tmp_path))).read()
  handle = acquire(str(tmp_path))
  assert str(os.getpid()) in open(lock_path(str(tmp_path))).read()
  handle.close()


def test_each_process_of_a_group_locks_its_own_file(tmp_path):
  first, second = acquire(str(tmp_path), 0), acquire(str(tmp_path), 1)
  assert os.path.basename(first.name) == "trainer.lock"
  assert os.path.basename(second.name) == "trainer.process1.lock"
  first.close()
  second.close()
