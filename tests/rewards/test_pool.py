"""The worker pool: parallel checks, hard deadlines, recovery from killed workers."""

import threading
import time

import pytest

from amrsd import rewards
from amrsd.rewards import feedback as fb
from amrsd.rewards import pool as pool_lib

TOWER = r"the answer is \boxed{9^{9^{9^{9^{9}}}}}"


@pytest.fixture(scope="module")
def pool():
  with rewards.VerifierPool(2) as p:
    yield p


def test_pool_matches_inline_verdicts(pool):
  completions = [r"\boxed{3}", r"\boxed{4}", "no answer", r"\boxed{", r"\boxed{\frac{6}{2}}"]
  records = [{"answer": "3"}] * len(completions)
  jobs = [("math", c, r) for c, r in zip(completions, records)]
  inline = rewards.verify_batch("math", completions, records, workers=0)
  assert pool.verify(jobs) == inline
  assert [v.reward for v in inline] == [1.0, 0.0, 0.0, 0.0, 1.0]


@pytest.mark.parametrize("timeout", [1.0, 0.3])
def test_hostile_answer_returns_within_the_limit(pool, timeout):
  # timeout 1.0: math-verify's SIGALRM stops it in the worker; 0.3 (under a second, so
  # no alarm): the pool kills the worker at the hard deadline.
  restarts = pool.restarts
  start = time.monotonic()
  verdict = pool.verify([("math", TOWER, {"answer": "5"})], timeout=timeout)[0]
  elapsed = time.monotonic() - start
  print(f"hostile tower, timeout {timeout} s: answered in {elapsed:.2f} s")
  assert verdict == (0.0, fb.TIMED_OUT)
  assert elapsed < timeout + pool_lib.KILL_GRACE_S + 0.5
  assert pool.restarts == restarts + (timeout < 1)


def test_one_hostile_answer_does_not_stall_the_batch(pool):
  jobs = [("math", TOWER, {"answer": "5"})] + [("arithmetic", f"{i}", {"answer": str(i)})
                                               for i in range(40)]
  start = time.monotonic()
  verdicts = pool.verify(jobs, timeout=0.3)
  elapsed = time.monotonic() - start
  assert verdicts[0] == (0.0, fb.TIMED_OUT)
  assert all(v.reward == 1.0 for v in verdicts[1:])
  # The other worker keeps going while the stuck one is killed and replaced (the margin
  # covers a busy shared machine; without the kill this batch would never finish).
  print(f"batch of 41 with one hostile answer, timeout 0.3 s: {elapsed:.2f} s")
  assert elapsed < 0.3 + pool_lib.KILL_GRACE_S + 3.0


def test_worker_killed_from_outside_is_replaced(pool):
  victim = pool._workers[0].process
  victim.kill()
  victim.wait()
  verdicts = pool.verify([("arithmetic", "8", {"answer": "8"})] * 4)
  assert [v.reward for v in verdicts] == [1.0] * 4
  assert all(w.process.poll() is None for w in pool._workers)


def test_workers_run_with_an_address_space_limit(pool):
  pool.wait_ready()
  for worker in pool._workers:
    with open(f"/proc/{worker.process.pid}/limits") as f:
      line = next(l for l in f if l.startswith("Max address space"))
    assert line.split()[3] == str(pool.memory_mb << 20)


def test_get_verifier_call_uses_the_shared_pool():
  verifier = rewards.get_verifier("gsm8k", timeout=2.0)
  assert verifier("so #### 1,000", {"answer": "#### 1000"}) == (1.0, "correct")
  assert rewards.shared_pool().size >= 1


def test_verify_batch_reads_verifier_names_from_records():
  records = [{"answer": "8", "task": "arithmetic"}, {"answer": "B", "task": "mcq"}]
  verdicts = rewards.verify_batch(None, ["8", "(C)"], records, workers=1)
  assert [v.reward for v in verdicts] == [1.0, 0.0]
  with pytest.raises(ValueError, match="'task' field"):
    rewards.verify_batch(None, ["8"], [{"answer": "8"}], workers=1)


def test_verify_batch_rejects_mismatched_lengths_and_bad_names():
  with pytest.raises(ValueError, match="2 completions but 1 records"):
    rewards.verify_batch("math", ["a", "b"], [{"answer": "1"}])
  with pytest.raises(ValueError, match="unknown verifier 'nope'"):
    rewards.verify_batch("nope", ["a"], [{"answer": "1"}], workers=1)


def test_pool_works_from_threads_where_inline_math_verify_cannot(pool):
  results = {}

  def run(key):
    results[key] = pool.verify([("math", r"\boxed{\frac{1}{2}}", {"answer": "0.5"})])[0]
    try:
      rewards.verify_batch("math", [r"\boxed{1}"], [{"answer": "1"}], workers=0)
    except RuntimeError as e:
      results[key + "_inline"] = str(e)

  threads = [threading.Thread(target=run, args=(f"t{i}",)) for i in range(3)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  assert [results[f"t{i}"] for i in range(3)] == [(1.0, "correct")] * 3
  assert "only works in the main thread" in results["t0_inline"]


def test_environment_jobs_answer_their_result_or_their_error(pool):
  # The bfcl_multi_turn jobs themselves are tested in tests/envs; here the protocol.
  unknown, = pool.run([{"kind": "env", "job": "nowhere.step", "args": {}}], timeout=5.0)
  assert unknown == {"error": "ValueError: unknown environment job 'nowhere.step'; valid: "
                              "bfcl_multi_turn.step, bfcl_multi_turn.check"}
  ends, = pool.run([{"kind": "env", "job": "bfcl_multi_turn.step",
                     "args": {"text": "Done.", "involved_classes": ["MathAPI"]}}], timeout=5.0)
  assert ends == {"result": {"ends_turn": True}}
