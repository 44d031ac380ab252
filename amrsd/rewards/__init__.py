"""Verifiers: rewards and feedback text for completions, under a hard time limit.

  verifier = get_verifier("math")
  reward, feedback = verifier(completion, record)        # record["answer"] is the gold
  verdicts = verify_batch("gsm8k", completions, records)  # parallel worker processes

Feedback says what was wrong ("no final answer found", "answer 41 does not match the
reference", "format broken: ...", "verification timed out") and never contains the gold.
"""

import atexit
import threading

from amrsd.rewards import feedback as fb
from amrsd.rewards.feedback import Verdict
from amrsd.rewards.pool import VerifierPool, soft_time_limit
from amrsd.rewards.registry import run_check, verifier_names, validate_name

DEFAULT_TIMEOUT_S = 5.0

__all__ = ["Verdict", "Verifier", "VerifierPool", "get_verifier", "verifier_names",
           "verify_batch", "shared_pool", "DEFAULT_TIMEOUT_S"]

_pools: dict[int | None, VerifierPool] = {}
_pools_lock = threading.Lock()


class Verifier:
  """A named verifier: `verifier(completion, record) -> Verdict(reward, feedback)`.

  Each call runs in a worker of the shared pool, so it is bounded by `timeout` seconds
  (plus pool.KILL_GRACE_S) whatever the answer.
  """

  def __init__(self, name: str, timeout: float = DEFAULT_TIMEOUT_S):
    self.name = validate_name(name)
    self.timeout = timeout

  def __call__(self, completion: str, record: dict) -> Verdict:
    return shared_pool().verify([(self.name, completion, record)], timeout=self.timeout)[0]

  def __repr__(self):
    return f"Verifier({self.name!r}, timeout={self.timeout})"


def get_verifier(name: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> Verifier:
  """The verifier called `name` (see verifier_names()); ValueError lists valid names."""
  return Verifier(name, timeout)


def verify_batch(name: str | None, completions, records, *, workers: int | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S) -> list[Verdict]:
  """Verdicts for completions[i] against records[i], in order.

  name: verifier name, or None to use each record's "task" field. workers: pool size
  (None: the shared default pool); 0 runs the checks inline in this process, where only
  math-verify's SIGALRM limit applies (main thread only, cannot stop C-level arithmetic).
  timeout: seconds per check.
  """
  completions, records = list(completions), list(records)
  if len(completions) != len(records):
    raise ValueError(f"verify_batch: {len(completions)} completions but {len(records)} records")
  names = [name if name is not None else _task_of(record, i) for i, record in enumerate(records)]
  if workers == 0:
    limit = soft_time_limit(timeout)
    if limit is not None and threading.current_thread() is not threading.main_thread():
      raise RuntimeError("verify_batch(workers=0) relies on SIGALRM, which only works in the "
                         "main thread; call it from there or use workers >= 1")
    return [run_check(n, c, r, limit) for n, c, r in zip(names, completions, records)]
  return shared_pool(workers).verify(zip(names, completions, records), timeout=timeout)


def shared_pool(workers: int | None = None) -> VerifierPool:
  """The process-wide pool with `workers` processes (started once, closed at exit)."""
  with _pools_lock:
    if workers not in _pools:
      _pools[workers] = VerifierPool(workers)
    return _pools[workers]


def _task_of(record, index):
  if not isinstance(record, dict) or "task" not in record:
    raise ValueError(f"verify_batch(name=None) reads the verifier from each record's 'task' "
                     f"field; record {index} has none")
  return record["task"]


@atexit.register
def _close_pools():
  for pool in _pools.values():
    pool.close()
  _pools.clear()
