"""One trainer per workdir: an exclusive flock on a lock file that names its holder.

Two trainers on one workdir would interleave metric rows and delete each other's
unfinished checkpoints. The lock is an OS file lock (fcntl.flock), so the kernel releases
it when the holder exits or is killed: a stale lock file left by a SIGKILLed run never
blocks its resume. In a multi-process run every process locks its own file
(trainer.lock for process 0, trainer.process<i>.lock otherwise), so a second launch is
refused on every process, not only on process 0.
"""

import fcntl
import json
import os
import socket
import time


class WorkdirBusyError(OSError):
  """Another live process holds the workdir's lock."""


def lock_path(workdir: str, process_index: int = 0) -> str:
  name = "trainer.lock" if process_index == 0 else f"trainer.process{process_index}.lock"
  return os.path.join(workdir, name)


def acquire(workdir: str, process_index: int = 0):
  """Locks the workdir for this process; returns the open lock file (keep it open).

  Raises WorkdirBusyError naming the holder (pid, host, start time) when another live
  process holds it. Closing the returned file (or exiting) releases the lock.
  """
  path = lock_path(workdir, process_index)
  handle = open(path, "a+")
  try:
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    handle.seek(0)
    holder = _describe(handle.read())
    handle.close()
    raise WorkdirBusyError(f"workdir {workdir!r} is in use by another trainer ({holder}; lock "
                           f"file {path}); wait for it to finish or choose another "
                           "--config.workdir") from None
  handle.seek(0)
  handle.truncate()
  handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}) + "\n")
  handle.flush()
  return handle


def _describe(text: str) -> str:
  try:
    h = json.loads(text)
    return f"pid {h['pid']} on host {h['host']}, started {h['started']}"
  except (ValueError, KeyError, TypeError):  # the holder is between truncate and write
    return "holder not yet recorded"
