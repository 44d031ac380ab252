"""Numeric answers (GSM8K and arithmetic tasks): exact comparison as decimals."""

from decimal import Decimal, InvalidOperation

from amrsd.rewards import extract
from amrsd.rewards import feedback as fb


def check_gsm8k(completion: str, record: dict, time_limit: int | None = None) -> fb.Verdict:
  """Reward 1.0 if the model's number equals the gold number of record["answer"].

  The gold is the text after "#### " (a GSM8K solution) or the whole field (a bare
  number). The model's number is the boxed value, else "#### x", else "the answer is x",
  else the last number. 1,000 / 1000 / 1000.0 / $1,000 are equal. time_limit is unused:
  no step here can take long.
  """
  del time_limit
  gold_text = str(record["answer"])
  gold = _to_decimal(extract.last_number(extract.hash_answer(gold_text) or gold_text) or "")
  if gold is None:
    return fb.verdict_fail(fb.BAD_REFERENCE)
  return _compare(extract.numeric_answer(completion), gold, gold_text)


def check_last_number(completion: str, record: dict, time_limit: int | None = None) -> fb.Verdict:
  """Procedural arithmetic: same extraction as GSM8K ("5 + 3 = 8" gives 8), gold is
  record["answer"] (a number as text)."""
  del time_limit
  gold_text = str(record["answer"])
  gold = _to_decimal(extract.normalize_number(gold_text.strip()))
  if gold is None:
    return fb.verdict_fail(fb.BAD_REFERENCE)
  return _compare(extract.numeric_answer(completion), gold, gold_text)


def _compare(answer: str | None, gold: Decimal, gold_text: str) -> fb.Verdict:
  if answer is None:
    return fb.verdict_fail(fb.NO_ANSWER)
  value = _to_decimal(answer)
  if value is None:
    return fb.verdict_unparsable(answer, gold_text)
  return fb.verdict_correct() if value == gold else fb.verdict_wrong(answer, gold_text)


def _to_decimal(text: str) -> Decimal | None:
  """Exact decimal of a plain number ("-12.50"); None for anything else. Decimal keeps
  huge inputs cheap (no float overflow, no int digit limit)."""
  try:
    value = Decimal(text)
  except (InvalidOperation, ValueError):
    return None
  return value if value.is_finite() else None
