"""Verifier worker process: python -m amrsd.rewards.worker [--memory-mb N].

Protocol (one JSON object per line): it prints {"ready": true} once imported, then reads
requests on stdin and answers each on stdout:
  {"id", "kind": "verify", "name", "completion", "record", "time_limit"}
      -> {"id", "reward", "feedback"}                   (a verifier check)
  {"id", "kind": "env", "job", "args", "time_limit"}
      -> {"id", "result"}, {"id", "failure"} or {"id", "error"}   (a job of amrsd.envs)
Its address space is capped so that a hostile
answer fails with MemoryError instead of exhausting the host; the pool kills it when a
check overruns its deadline.
"""

import argparse
import json
import logging
import os
import resource
import sys


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--memory-mb", type=int, default=2048,
                      help="address-space limit of this process in MiB (0: no limit)")
  args = parser.parse_args(argv)
  # The protocol owns the real stdout; stray prints from libraries go to stderr.
  channel = os.fdopen(os.dup(1), "w", buffering=1)
  os.dup2(2, 1)
  if args.memory_mb > 0:
    limit = args.memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
  # math-verify logs every timeout and parse failure at ERROR; the verdict says it already.
  logging.getLogger("math_verify").setLevel(logging.CRITICAL)
  from amrsd.rewards import math_answers, registry
  math_answers.math_verify_api()  # its import must not count against the first check's deadline
  channel.write(json.dumps({"ready": True}) + "\n")
  for line in sys.stdin:
    request = json.loads(line)
    if request["kind"] == "env":
      answer = _env_job(request)
    else:
      reward, feedback = _check(registry, request)
      answer = {"reward": reward, "feedback": feedback}
    channel.write(json.dumps({"id": request["id"], **answer}) + "\n")


def _check(registry, request):
  try:
    return registry.run_check(request["name"], request["completion"], request["record"],
                              request["time_limit"])
  except MemoryError:
    from amrsd.rewards import feedback
    return 0.0, feedback.OUT_OF_MEMORY
  except Exception as e:  # A bad record must not kill the worker; the caller sees why.
    return 0.0, f"verifier error: {type(e).__name__}"


def _env_job(request):
  """An environment job's result; its own errors are the caller's to raise (a bad record
  or a bug: what the policy writes never raises there)."""
  from amrsd import envs
  from amrsd.rewards import pool
  try:
    return {"result": envs.worker_job(request["job"])(request["args"])}
  except MemoryError:
    return {"failure": pool.OUT_OF_MEMORY}
  except Exception as e:
    return {"error": f"{type(e).__name__}: {e}"}


if __name__ == "__main__":
  main()
