"""Multiple-choice answers: one letter A-E (SciKnowEval writes it as <answer>X</answer>)."""

from amrsd.rewards import extract
from amrsd.rewards import feedback as fb


def check_choice(completion: str, record: dict, time_limit: int | None = None) -> fb.Verdict:
  """Reward 1.0 if the model's letter equals record["answer"] ("B", "(B)" or "b")."""
  del time_limit
  gold_text = str(record["answer"])
  gold = extract.choice_letter(f"({gold_text.strip().strip('()').upper()})")
  if gold is None:
    return fb.verdict_fail(fb.BAD_REFERENCE)
  letter = extract.choice_letter(completion)
  if letter is None:
    # No bare option letters in this message: a gold "A" would count as mentioned.
    return fb.verdict_fail("no option letter found; end with <answer>, the letter, </answer>")
  if letter == gold:
    return fb.verdict_correct()
  return fb.verdict_wrong(letter, gold, "is not the correct choice")
