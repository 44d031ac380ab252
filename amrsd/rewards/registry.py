"""Verifier names and the checks behind them (each: completion, record -> Verdict)."""

import functools

from amrsd.rewards import bfcl, choice, math_answers, numeric, procedural, tooluse
from amrsd.rewards import feedback as fb

CHECKS = {
    "math": math_answers.check_math,
    "gsm8k": numeric.check_gsm8k,
    "mcq": choice.check_choice,
    "arithmetic": numeric.check_last_number,
    "tooluse": tooluse.check_tooluse,
    # Scoring of some published reference code, only to compare with its numbers.
    "tooluse_merged": functools.partial(tooluse.check_tooluse, merged=True),
    "bfcl": bfcl.check_bfcl,
    **{family: functools.partial(procedural.check_reasoning_gym, family)
       for family in procedural.NUMERIC_FAMILIES},
}


def verifier_names() -> list[str]:
  return sorted(CHECKS)


def validate_name(name: str) -> str:
  if name not in CHECKS:
    raise ValueError(f"unknown verifier {name!r}; valid names: {', '.join(verifier_names())}")
  return name


def run_check(name: str, completion: str, record: dict, time_limit: int | None) -> fb.Verdict:
  """Runs one check in this process; time_limit is the soft (SIGALRM) limit in seconds.

  The returned feedback is checked once more against the reference, so no check can
  leak it by mistake.
  """
  validate_job(name, completion, record)
  reward, message = CHECKS[name](completion, record, time_limit)
  if fb.mentions(message, str(record["answer"])):
    message = fb.CORRECT if reward >= 1.0 else "the final answer is wrong"
  return fb.Verdict(float(reward), message)


def validate_job(name: str, completion, record) -> None:
  """Raises a clear error for an unknown name, a non-string completion or a record
  without "answer" (checked in the caller's process, before any worker sees it)."""
  validate_name(name)
  if not isinstance(completion, str):
    raise TypeError(f"verifier {name!r}: completion must be str, got {type(completion).__name__}")
  if not isinstance(record, dict) or "answer" not in record:
    raise ValueError(f"verifier {name!r}: record must be a dict with an 'answer' field, got "
                     f"{sorted(record) if isinstance(record, dict) else type(record).__name__}")
