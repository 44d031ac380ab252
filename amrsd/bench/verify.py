"""Verification throughput: python -m amrsd.bench.verify [--n=1000] [--workers=N].

1,000 MATH-500-style completions (correct, wrong and malformed answers, built from the
MATH-500 set shipped with amrsd), verified inline in this process (the reference) and by
the worker pool; prints completions/s and the pool's speed-up over inline.
"""

import os
import random
import time

from absl import app, flags

from amrsd import rewards
from amrsd.data import load_benchmark

_N = flags.DEFINE_integer("n", 1000, "Completions to verify.")
_WORKERS = flags.DEFINE_integer("workers", None, "Pool size (default: CPU count, at most 8).")
_TIMEOUT = flags.DEFINE_float("timeout", 5.0, "Seconds per check.")


def make_completions(problems, n, seed=0):
  """n (completion, record, kind) triples: 50 % correct, 30 % wrong, 20 % malformed."""
  rng = random.Random(seed)
  out = []
  for i in range(n):
    record = {"answer": problems[i % len(problems)]["answer"]}
    roll = rng.random()
    if roll < 0.5:
      text, kind = f"Working... so the answer is $\\boxed{{{record['answer']}}}$.", "correct"
    elif roll < 0.8:
      other = problems[rng.randrange(len(problems))]["answer"]
      text, kind = f"I get \\boxed{{{other}}}", "wrong"
    elif roll < 0.9:
      text, kind = f"The answer is \\boxed{{{record['answer']}", "malformed"
    else:
      text, kind = "I am not sure what the answer is.", "malformed"
    out.append((text, record, kind))
  return out


def main(argv):
  del argv
  problems = load_benchmark("math500")
  jobs = make_completions(problems, _N.value)
  completions = [c for c, _, _ in jobs]
  records = [r for _, r, _ in jobs]
  kinds = {k: sum(kind == k for _, _, kind in jobs) for k in ("correct", "wrong", "malformed")}
  print(f"{len(jobs)} completions: {kinds}")

  start = time.perf_counter()
  inline = rewards.verify_batch("math", completions, records, workers=0, timeout=_TIMEOUT.value)
  inline_s = time.perf_counter() - start

  with rewards.VerifierPool(_WORKERS.value) as pool:
    pool.wait_ready()  # start-up (imports) is paid once per run, not per batch
    start = time.perf_counter()
    pooled = pool.verify([("math", c, r) for c, r in zip(completions, records)],
                         timeout=_TIMEOUT.value)
    pool_s = time.perf_counter() - start
    size = pool.size
  if [v.reward for v in pooled] != [v.reward for v in inline]:
    raise SystemExit("pool and inline verdicts differ")
  accuracy = sum(v.reward for v in inline) / len(inline)
  print(f"mean reward {accuracy:.3f} (correct share {kinds['correct'] / len(jobs):.3f}), "
        f"CPUs {os.cpu_count()}")
  print(f"inline (1 process, reference): {len(jobs) / inline_s:8.1f} completions/s ({inline_s:.2f} s)")
  print(f"pool ({size} workers):           {len(jobs) / pool_s:8.1f} completions/s ({pool_s:.2f} s)"
        f"  ratio {inline_s / pool_s:.2f}x")


if __name__ == "__main__":
  app.run(main)
