"""Procedural tasks from reasoning-gym, scored by reasoning-gym's own scorer.

The 135M model writes "5 + 3 = 8", which reasoning-gym's exact-match scorers reject;
the final number is extracted leniently first and only that is scored.
"""

import functools

from amrsd.rewards import extract
from amrsd.rewards import feedback as fb

# reasoning-gym families with one numeric answer, so lenient number extraction is right.
NUMERIC_FAMILIES = ("chain_sum", "basic_arithmetic")


def check_reasoning_gym(family: str, completion: str, record: dict,
                        time_limit: int | None = None) -> fb.Verdict:
  """Reward = reasoning-gym's score of the extracted final number against the record
  (which carries reasoning-gym's "answer" and "metadata")."""
  del time_limit
  answer = extract.numeric_answer(completion)
  if answer is None:
    return fb.verdict_fail(fb.NO_ANSWER)
  score = float(_scorer(family)(answer, record))
  if score >= 1.0:
    return fb.verdict_correct()
  return fb.verdict_wrong(answer, str(record["answer"]))._replace(reward=max(score, 0.0))


@functools.cache
def _scorer(family: str):
  import reasoning_gym  # ~1 s to import: only processes that score these tasks pay it.
  return reasoning_gym.get_score_answer_fn(family)
