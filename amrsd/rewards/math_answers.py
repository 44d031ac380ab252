"""Math answers: extract the final answer, check it symbolically with math-verify.

math-verify bounds its own parse and comparison with SIGALRM, which works only in a
process's main thread and cannot interrupt long C-level arithmetic; the hard limit is
the worker pool's (amrsd.rewards.pool). `time_limit` here is that soft, inner limit.

math-verify (and the sympy and antlr it loads, about half a second) is imported on the
first check: the model, the train step and the benchmarks import this package through the
hint filter and must run where only the array stack is installed (an accelerator image).
"""

import functools
import types

from amrsd.rewards import extract
from amrsd.rewards import feedback as fb

# Longer "final answers" are not answers; refusing them keeps the parser's work bounded.
MAX_ANSWER_CHARS = 1000


@functools.cache
def math_verify_api() -> types.SimpleNamespace:
  """math-verify's parse, verify, TimeoutException and the extraction configs."""
  from math_verify import parse, verify
  from math_verify.errors import TimeoutException
  from math_verify.parser import ExprExtractionConfig, LatexExtractionConfig
  return types.SimpleNamespace(parse=parse, verify=verify, TimeoutException=TimeoutException,
                               configs=(LatexExtractionConfig(), ExprExtractionConfig()))


def check_math(completion: str, record: dict, time_limit: int | None) -> fb.Verdict:
  """Reward 1.0 if the final answer equals record["answer"] as math-verify decides.

  The final answer is the last \\boxed{...}; with record["extract"] == "last_number" the
  last number in the completion is used when nothing is boxed. time_limit: seconds for
  each of parse and compare (SIGALRM, main thread only), None for no inner limit.
  """
  gold_text = str(record["answer"])
  answer = extract.boxed_answer(completion)
  if answer is None and record.get("extract") == "last_number":
    answer = extract.last_number(completion)
  if not answer:
    if "\\boxed{" in completion:
      return fb.verdict_fail("format broken: \\boxed{ is empty or never closed")
    return fb.verdict_fail(fb.NO_ANSWER + " (expected \\boxed{...})")
  if len(answer) > MAX_ANSWER_CHARS:
    return fb.verdict_fail(f"format broken: the final answer is over {MAX_ANSWER_CHARS} characters")
  mv = math_verify_api()
  try:
    gold = _parse_gold(gold_text, time_limit)
  except mv.TimeoutException:
    return fb.verdict_fail(fb.TIMED_OUT)
  except Exception:  # math-verify raises many kinds on malformed LaTeX.
    return fb.verdict_fail(fb.BAD_REFERENCE)
  if not gold:
    return fb.verdict_fail(fb.BAD_REFERENCE)
  try:
    predicted = mv.parse(_as_latex(answer), mv.configs, parsing_timeout=time_limit,
                         raise_on_error=True)
    if not predicted:
      return fb.verdict_unparsable(answer, gold_text)
    same = mv.verify(list(gold), predicted, timeout_seconds=time_limit, raise_on_error=True)
  except mv.TimeoutException:
    return fb.verdict_fail(fb.TIMED_OUT)
  except MemoryError:
    return fb.verdict_fail(fb.OUT_OF_MEMORY)
  except Exception:  # math-verify raises many kinds on malformed LaTeX; all mean "unparsable".
    return fb.verdict_unparsable(answer, gold_text)
  return fb.verdict_correct() if same else fb.verdict_wrong(answer, gold_text)


@functools.lru_cache(maxsize=4096)
def _parse_gold(gold_text: str, time_limit: int | None) -> tuple:
  """Parsed reference (cached: a batch holds G rollouts of each problem)."""
  mv = math_verify_api()
  return tuple(mv.parse(_as_latex(gold_text), mv.configs, parsing_timeout=time_limit,
                        raise_on_error=True))


def _as_latex(answer: str) -> str:
  """Wraps a bare answer so math-verify reads it as one LaTeX expression."""
  return answer if "\\boxed" in answer or answer.startswith("$") else f"${answer}$"
