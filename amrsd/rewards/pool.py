"""A pool of verifier worker processes with a hard deadline per check.

Each worker (amrsd.rewards.worker) runs jobs one at a time: verifier checks (`verify`)
and the tool calls of environments (amrsd.envs, through `run`). A job that overruns
`timeout + KILL_GRACE_S` gets the answer "timed out" (a check: the verdict "verification
timed out") and its worker is
killed (SIGKILL, so C-level arithmetic stops too) and replaced; the other workers keep
going, so one hostile answer costs the batch at most one deadline. Workers are plain
subprocesses, not fork()ed copies of the caller, so they never inherit JAX's threads
or device state.
"""

import collections
import json
import math
import os
import selectors
import subprocess
import sys
import threading
import time

from amrsd.rewards import feedback as fb
from amrsd.rewards import registry

# Past the soft limit the worker's own SIGALRM should have answered; this is the margin
# before the worker is presumed stuck in C code and killed.
KILL_GRACE_S = 0.5
# What the pool answers for a job that produced no answer of its own.
TIMED_OUT = "timed out"
DIED = "died"
OUT_OF_MEMORY = "out of memory"  # answered by the worker itself (environment jobs)
_FAILED_VERDICTS = {TIMED_OUT: fb.TIMED_OUT, DIED: fb.WORKER_DIED}
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def soft_time_limit(timeout: float) -> int | None:
  """math-verify's SIGALRM limit (whole seconds) for a hard timeout; None below 1 s."""
  return int(math.floor(timeout)) if timeout >= 1 else None


class VerifierPool:
  """Worker processes that run verifier checks (and environment jobs, amrsd.envs) in
  parallel under a hard time limit.

  workers: number of processes (default: CPU count, at most 8). memory_mb: address-space
  limit of each worker. Use as a context manager or call close().
  """

  def __init__(self, workers: int | None = None, *, memory_mb: int = 2048,
               start_timeout: float = 120.0):
    if workers is None:
      workers = min(os.cpu_count() or 1, 8)
    if workers < 1:
      raise ValueError(f"VerifierPool needs workers >= 1, got {workers}")
    self.memory_mb = memory_mb
    self.start_timeout = start_timeout
    self.restarts = 0  # workers replaced after a timeout or a crash
    self._lock = threading.Lock()  # one verify() at a time: workers hold one job each
    self._selector = selectors.DefaultSelector()
    self._workers = [self._spawn() for _ in range(workers)]

  @property
  def size(self) -> int:
    return len(self._workers)

  def verify(self, jobs, *, timeout: float = 5.0) -> list[fb.Verdict]:
    """Verdicts for jobs [(verifier name, completion, record)], in order.

    timeout: seconds per check; an overrun scores 0 with "verification timed out".
    """
    requests = []
    for name, completion, record in jobs:
      registry.validate_job(name, completion, record)
      requests.append(dict(kind="verify", name=name, completion=completion, record=record))
    return [fb.verdict_fail(_FAILED_VERDICTS[answer["failure"]]) if "failure" in answer
            else fb.Verdict(float(answer["reward"]), answer["feedback"])
            for answer in self.run(requests, timeout=timeout)]

  def run(self, requests, *, timeout: float) -> list[dict]:
    """The workers' answers (dicts) to requests, in order (see amrsd.rewards.worker).

    timeout: seconds per request; an overrun answers {"failure": TIMED_OUT}, a request
    whose worker died {"failure": DIED}.
    """
    if timeout <= 0:
      raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    with self._lock:
      return self._run(list(requests), timeout)

  def _run(self, jobs, timeout):
    results: list[dict | None] = [None] * len(jobs)
    queue = collections.deque(range(len(jobs)))
    remaining = len(jobs)
    while remaining:
      for worker in self._workers:
        if worker.ready and worker.job is None and queue:
          index = queue.popleft()
          if not self._dispatch(worker, index, jobs, timeout):
            queue.appendleft(index)  # the worker is dead; _poll replaces it
      for index, answer in self._poll():
        results[index] = answer
        remaining -= 1
    return results

  def wait_ready(self):
    """Blocks until every worker has started (imports done); verify() does not need it,
    but timings should not include start-up."""
    with self._lock:
      while not all(w.ready for w in self._workers):
        for _ in self._poll():
          pass

  def close(self):
    for worker in self._workers:
      worker.kill()
    self._workers = []
    self._selector.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def _spawn(self) -> "_Worker":
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    process = subprocess.Popen(
        [sys.executable, "-m", "amrsd.rewards.worker", f"--memory-mb={self.memory_mb}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    worker = _Worker(process, time.monotonic() + self.start_timeout)
    self._selector.register(process.stdout, selectors.EVENT_READ, worker)
    return worker

  def _replace(self, worker: "_Worker"):
    self._selector.unregister(worker.process.stdout)
    worker.kill()
    self.restarts += 1
    self._workers[self._workers.index(worker)] = self._spawn()

  def _dispatch(self, worker, index, jobs, timeout) -> bool:
    """Sends job `index` to an idle worker; False if the worker turned out dead."""
    request = dict(jobs[index], id=index, time_limit=soft_time_limit(timeout))
    worker.job = index
    worker.deadline = time.monotonic() + timeout + KILL_GRACE_S
    try:
      worker.process.stdin.write((json.dumps(request, default=str) + "\n").encode())
      worker.process.stdin.flush()
    except BrokenPipeError:
      worker.job = None
      self._replace(worker)
      return False
    return True

  def _poll(self):
    """Waits for answers until the nearest deadline; yields (job index, answer)."""
    wait = min(w.deadline for w in self._workers) - time.monotonic()
    for key, _ in self._selector.select(timeout=None if math.isinf(wait) else max(0.0, wait)):
      worker = key.data
      chunk = os.read(worker.process.stdout.fileno(), 1 << 16)
      if not chunk:
        yield from self._died(worker)
        continue
      for message in worker.feed(chunk):
        if message.get("ready"):
          worker.ready = True
          worker.deadline = math.inf
        elif message.get("id") == worker.job:
          index, worker.job, worker.deadline = worker.job, None, math.inf
          del message["id"]
          yield index, message
    now = time.monotonic()
    for worker in list(self._workers):
      if now < worker.deadline:
        continue
      if not worker.ready:
        raise RuntimeError(f"verifier worker did not start within {self.start_timeout:.0f} s "
                           "(run `python -m amrsd.rewards.worker` to see why)")
      index = worker.job
      self._replace(worker)
      yield index, {"failure": TIMED_OUT}

  def _died(self, worker):
    code = worker.process.wait()
    if not worker.ready and code >= 0:  # exited by itself: it cannot start here
      raise RuntimeError(f"verifier worker exited with code {code} while starting (run "
                         "`python -m amrsd.rewards.worker` to see why)")
    index = worker.job
    self._replace(worker)
    if index is not None:
      # Killed from outside (e.g. the kernel's OOM killer): the answer is the suspect.
      yield index, {"failure": DIED}


class _Worker:
  """One worker process and the job it is running (host-side bookkeeping)."""

  def __init__(self, process, start_deadline):
    self.process = process
    self.ready = False
    self.job = None
    self.deadline = start_deadline
    self._buffer = b""

  def feed(self, chunk: bytes) -> list[dict]:
    self._buffer += chunk
    *lines, self._buffer = self._buffer.split(b"\n")
    return [json.loads(line) for line in lines if line.strip()]

  def kill(self):
    if self.process.poll() is None:
      self.process.kill()
    self.process.wait()
    for stream in (self.process.stdin, self.process.stdout):
      try:
        stream.close()
      except BrokenPipeError:  # unsent request bytes of a dead worker: nothing to keep
        pass
