"""Verdicts and their feedback text, which must never reveal the reference answer.

Feedback goes into reflection prompts (the policy reads it), so a leaked reference
would turn a hint into the answer. `verdict_wrong` quotes the model's own answer; when
that quote would contain the reference (the model wrote it but it was judged wrong, or
it is a superstring of it), the quote is dropped.
"""

import re
from typing import NamedTuple

CORRECT = "correct"
NO_ANSWER = "no final answer found"
TIMED_OUT = "verification timed out"
OUT_OF_MEMORY = "verification ran out of memory"
WORKER_DIED = "verification failed: the checker process died"
BAD_REFERENCE = "the reference answer could not be parsed (data problem, not the model's)"
_QUOTE_CHARS = 60


class Verdict(NamedTuple):
  """reward in [0, 1] (float); feedback: one short sentence for the policy to read."""
  reward: float
  feedback: str


def verdict_correct() -> Verdict:
  return Verdict(1.0, CORRECT)


def verdict_fail(message: str) -> Verdict:
  return Verdict(0.0, message)


def verdict_wrong(answer: str, gold: str, what: str = "does not match the reference") -> Verdict:
  """0 reward, "answer <answer> <what>", with the quote dropped if it reveals `gold`."""
  quote = shorten(answer)
  if mentions(quote, gold):
    return Verdict(0.0, f"the final answer {what}")
  return Verdict(0.0, f"answer {quote} {what}")


def verdict_unparsable(answer: str, gold: str) -> Verdict:
  quote = shorten(answer)
  if mentions(quote, gold):
    return Verdict(0.0, "format broken: the final answer could not be parsed")
  return Verdict(0.0, f"format broken: answer {quote} could not be parsed")


def mentions(text: str, gold: str) -> bool:
  """Whether `text` reveals `gold`: a single-letter gold (a choice) as a whole word, any
  other gold as a substring after removing spaces, $ and thousands separators. A gold
  holding "#### " (a GSM8K solution) is its text after the last "####"."""
  gold = _plain(str(gold).rpartition("####")[2])  # a GSM8K solution: only its final number
  if not gold:
    return False
  if len(gold) == 1 and gold.isalpha():
    return re.search(rf"(?<![A-Za-z]){re.escape(gold)}(?![A-Za-z])", text, re.IGNORECASE) is not None
  return gold in _plain(text)


def safe_message(parts, secrets, generic: str, *, max_parts: int = 4) -> str:
  """The parts that reveal none of `secrets` (gold names and values), joined by "; ";
  `generic` when none is left. For verifiers whose gold is many values (tool calls)."""
  kept = [p for p in parts if not any(_reveals(p, s) for s in secrets)][:max_parts]
  for message in ("; ".join(kept), generic, "wrong"):
    if message and not any(_reveals(message, s) for s in secrets):
      return message
  return "incorrect"


def leaf_texts(value) -> list[str]:
  """Every non-empty leaf of a JSON value as text (true/false as JSON writes them)."""
  texts, stack = [], [value]
  while stack:
    item = stack.pop()
    if isinstance(item, dict):
      stack.extend(item.values())
    elif isinstance(item, list):
      stack.extend(item)
    elif isinstance(item, bool):
      texts.append(str(item).lower())
    elif item is not None and str(item).strip():
      texts.append(str(item).strip())
  return texts


def _reveals(text: str, secret: str) -> bool:
  # Case-insensitive substrings too, beyond mentions(): "getuser" gives "getUser" away.
  return mentions(text, secret) or (len(secret) > 1 and secret.lower() in text.lower())


def _plain(text: str) -> str:
  return re.sub(r"[\s$,]|\\[,!;: ]", "", text).strip()


def shorten(answer: str) -> str:
  """One line of at most _QUOTE_CHARS characters of a model's answer, for quoting."""
  answer = " ".join(answer.split())
  return answer if len(answer) <= _QUOTE_CHARS else answer[:_QUOTE_CHARS - 3] + "..."
