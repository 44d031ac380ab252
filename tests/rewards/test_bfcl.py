"""The bfcl verifier: bfcl-eval's own decoder and AST checker on rows it ships."""

import json
import random
import re
import time

import pytest

from amrsd.data.bfcl import BfclSource
from amrsd.rewards.registry import run_check

SOURCES = {c: BfclSource([c], split="all") for c in ("simple", "parallel", "multiple",
                                                     "parallel_multiple", "live_simple")}


def check(completion, record):
  return run_check("bfcl", completion, record, None)


def calls_text(ground_truth, order=None, *, change=None):
  """A Python call list from bfcl's possible answers: each argument's first possible value
  (arguments whose first one is "" are optional and left out); change(name, value) edits."""
  calls = []
  for call in ground_truth:
    (function, arguments), = call.items()
    parts = []
    for name, values in arguments.items():
      if values and values[0] != "":
        value = _first(values[0])
        value = value if change is None else change(name, value)
        parts.append(f"{name}={value!r}")
    calls.append(f"{function}({', '.join(parts)})")
  if order is not None:
    calls = [calls[i] for i in order]
  return "[" + ", ".join(calls) + "]"


def _first(value):
  """A dict possible answer lists possible values per key too: take the first of each."""
  if isinstance(value, dict):
    return {k: _first(v[0]) for k, v in value.items() if v and v[0] != ""}
  return value


@pytest.mark.parametrize("category", sorted(SOURCES))
def test_first_possible_answers_score_one(category):
  records = SOURCES[category].records[:25]
  for record in records:
    assert check(calls_text(json.loads(record["answer"])), record) == (1.0, "correct"), record["id"]


def test_parallel_calls_in_any_order_score_one():
  for record in SOURCES["parallel"].records[:20]:
    truth = json.loads(record["answer"])
    order = list(range(len(truth)))[::-1]
    assert check(calls_text(truth, order), record).reward == 1.0


def test_wrong_value_and_wrong_type_are_told_apart():
  record = SOURCES["simple"].records[0]  # calculate_triangle_area(base=10, height=5)
  truth = json.loads(record["answer"])
  bumped = calls_text(truth, change=lambda n, v: v + 1 if isinstance(v, int) else v)
  as_text = calls_text(truth, change=lambda n, v: str(v))
  assert check(bumped, record) == (0.0, "an argument has the wrong value")
  assert check(as_text, record) == (0.0, "an argument has the wrong type")


@pytest.mark.parametrize("completion, feedback", [
    ("I would use the triangle tool.", "the output is not a Python list of function calls"),
    ("[calculate_triangle_area(base=10, height=]", "the output is not a Python list"),
    ("[other_function(x=1)]", "a call is wrong: wrong function name"),
    ("[]", "a call is wrong: wrong number of calls"),
])
def test_malformed_and_wrong_calls_are_named(completion, feedback):
  verdict = check(completion, SOURCES["simple"].records[0])
  assert verdict.reward == 0.0 and verdict.feedback.startswith(feedback)


@pytest.mark.parametrize("hostile", ["[" * 200_000, "[f(" * 50_000, "x" * 3_000_000,
                                     "[f(a='\ud800')]", "[f(a=" + "9" * 100_000 + ")]"])
def test_hostile_output_is_bounded_and_never_raises(hostile):
  start = time.perf_counter()
  verdict = check(hostile, SOURCES["simple"].records[0])
  assert time.perf_counter() - start < 2.0 and verdict.reward == 0.0


def test_feedback_never_contains_a_possible_answer_value():
  rng = random.Random(0)
  for record in SOURCES["simple"].records[:40] + SOURCES["parallel"].records[:20]:
    truth = json.loads(record["answer"])
    secrets = {str(v) for call in truth for args in call.values() for values in args.values()
               for v in values if str(v).strip()} | {name for call in truth for name in call}
    wrong = [calls_text(truth, change=lambda n, v: v * 2 + 1 if isinstance(v, int)
                        and not isinstance(v, bool) else f"{v}x"),
             calls_text(truth, change=lambda n, v: [v]), calls_text(truth[:1] * 3),
             f"[{rng.choice(list(truth[0]))}]", "nothing"]
    for completion in wrong:
      verdict = check(completion, record)
      if verdict.reward == 1.0:
        continue  # e.g. a list value that the checker accepts as its own element
      for secret in secrets:
        pattern = re.escape(secret) if len(secret) > 1 else rf"\b{re.escape(secret)}\b"
        assert not re.search(pattern, verdict.feedback), (secret, verdict)
