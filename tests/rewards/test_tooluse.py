"""The tooluse verifier on real ToolAlpaca rows (tests/fixtures/domains, copied from the
SDPO conversion): right, wrong, malformed, reordered, repeated tools, hostile, no leaks."""

import json
import random
import re
import time

import pytest

from amrsd.rewards import get_verifier
from amrsd.rewards.registry import run_check
from amrsd.rewards.tooluse import OPTIONAL_PREFIX, gold_calls
from tests.conftest import FIXTURES

ROWS = [json.loads(line) for line in open(FIXTURES / "domains" / "tooluse_test.jsonl")]


def check(completion, row, name="tooluse"):
  return run_check(name, completion, {"answer": row["answer"]}, None)


def gold(row):
  return [(c["Action"], json.loads(c["Action_Input"])) for c in json.loads(row["answer"])]


def required(row):
  return [(t, a) for t, a in gold(row) if not t.startswith(OPTIONAL_PREFIX)]


def react(calls, indent=None):
  return "\n".join(f"Thought: I should call it.\nAction: {tool}\nAction Input: "
                   f"{json.dumps(args, indent=indent)}\nObservation: done" for tool, args in calls)


def row_with(tools):
  return next(r for r in ROWS if [t for t, _ in gold(r)] == tools)


@pytest.mark.parametrize("index", range(len(ROWS)))
def test_gold_calls_as_react_lines_score_one(index):
  assert check(react(required(ROWS[index])), ROWS[index]) == (1.0, "correct")


@pytest.mark.parametrize("index", range(len(ROWS)))
def test_reordered_calls_keys_and_spacing_score_one(index):
  rng = random.Random(index)
  calls = [(t, dict(rng.sample(sorted(a.items()), len(a)))) for t, a in required(ROWS[index])]
  assert check(react(calls[::-1], indent=3), ROWS[index]).reward == 1.0


@pytest.mark.parametrize("form", [
    lambda calls: "```json\n" + json.dumps([{"name": t, "arguments": a} for t, a in calls]) + "\n```",
    lambda calls: json.dumps({"tool_calls": [{"type": "function", "function": {
        "name": t, "arguments": json.dumps(a)}} for t, a in calls]}),
    lambda calls: "Calls:\n" + "\n".join(json.dumps({"Action": t, "Action_Input": json.dumps(a)})
                                         for t, a in calls),
])
def test_json_call_forms_score_one(form):
  for row in ROWS:
    assert check(form(required(row)), row).reward == 1.0, row["answer"]


def test_number_equals_float_but_not_string_or_boolean():
  row = row_with(["searchAxolotlImages"])
  (tool, args), = gold(row)
  assert args["page"] == 1
  assert check(react([(tool, {**args, "page": 1.0})]), row).reward == 1.0
  verdict = check(react([(tool, {**args, "page": "1"})]), row)
  assert verdict == (0.0, "the first call: argument 'page' is a JSON string, which is the wrong type")
  assert check(react([(tool, {**args, "page": True})]), row).reward == 0.0


def test_unset_gold_argument_may_be_left_out():
  row = row_with(["searchAxolotlImages"])
  (tool, args), = gold(row)
  assert args["gender"] == ""
  without = {k: v for k, v in args.items() if k != "gender"}
  assert check(react([(tool, without)]), row).reward == 1.0


def test_wrong_value_missing_and_unexpected_arguments_are_named():
  row = row_with(["searchAxolotlImages"])
  (tool, args), = gold(row)
  wrong = {**{k: v for k, v in args.items() if k != "color"}, "size": "large", "colour": "x"}
  verdict = check(react([(tool, wrong)]), row)
  assert verdict == (0.0, "the first call: missing argument 'color'; unexpected argument "
                          "'colour'; argument 'size' has the wrong value")


def test_wrong_tool_is_named_only_when_the_model_wrote_it():
  row = row_with(["searchAxolotlImages"])
  verdict = check(react([("getAxolotlFacts", {"limit": 3})]), row)
  assert verdict == (0.0, "the first call uses getAxolotlFacts, which is not a tool this "
                          "request needs")
  # A name holding the gold one would give it away: that part is dropped.
  verdict = check(react([("searchAxolotlImagesV2", {})]), row)
  assert verdict.reward == 0.0 and "searchAxolotlImages" not in verdict.feedback


def test_two_calls_of_one_tool_are_a_multiset():
  row = row_with(["getSpecificVerse"] * 5)
  calls = gold(row)
  assert check(react(calls[::-1]), row).reward == 1.0
  assert check(react(calls[:1] * 5), row).reward == 0.0
  assert check(react(calls[:4]), row) == (0.0, "too few calls: the request needs more of them")
  assert check(react(calls + calls[:1]), row).feedback.startswith("too many calls")


def test_merged_scoring_accepts_a_wrong_answer_that_multiset_scoring_rejects():
  # Merging the five calls' arguments keeps only the last verse: one call with it passes.
  row = row_with(["getSpecificVerse"] * 5)
  last_only = react(gold(row)[-1:])
  assert check(last_only, row, "tooluse_merged").reward == 1.0
  assert check(last_only, row).reward == 0.0
  assert check(react(gold(row)), row, "tooluse_merged").reward == 1.0


def test_optional_gold_call_may_be_made_or_left_out():
  row = next(r for r in ROWS if OPTIONAL_PREFIX in r["answer"])
  (first, first_args), (optional, optional_args) = gold(row)
  plain = optional.removeprefix(OPTIONAL_PREFIX)
  assert check(react([(first, first_args)]), row).reward == 1.0
  assert check(react([(first, first_args), (plain, optional_args)]), row).reward == 1.0
  assert check(react([(plain, optional_args)]), row) == (0.0, "a call the request needs is missing")


@pytest.mark.parametrize("completion, feedback", [
    ("I cannot help with that.", "no tool call found"),
    ("Action: getAxolotlFacts\nAction Input: {category: habits}",
     "the first call has an Action Input that is not valid JSON"),
    ("Action: getAxolotlFacts\nThought: done", "the first call has no Action Input"),
    ("Action: getAxolotlFacts\nAction Input: [1, 2]",
     "the first call has an Action Input that is a JSON array, not an object"),
    ('{"name": "getAxolotlFacts", "arguments": "{oops"}',
     "the first call has arguments that are not valid JSON"),
])
def test_malformed_output_says_what_is_malformed(completion, feedback):
  verdict = check(completion, row_with(["searchAxolotlImages"]))
  assert verdict.reward == 0.0 and verdict.feedback.startswith(feedback)


@pytest.mark.parametrize("hostile", [
    "[" * 200_000,
    '{"a": ' * 100_000,
    "Action: x\nAction Input: " + "[" * 100_000,
    "Action: x\nAction Input: {}\n" * 100_000,
    "\ud800\udfff" * 50_000 + "\nAction: \udc00\nAction Input: {\"\\ud800\": 1}",
    '{"name": "x", "arguments": {"a": ' + "1" * 100_000 + "}}",
    '[{"name": "a"}' * 50_000,
    "x" * 5_000_000,
    "Action: getRandomAxolotlImage\nAction Input: " + '{"a": ' * 900 + "1" + "}" * 900,
    "Action: getRandomAxolotlImage\nAction Input: {\"a\": " + "[" * 900 + "]" * 900 + "}",
])
def test_hostile_output_is_bounded_and_never_raises(hostile):
  row = ROWS[0]
  start = time.perf_counter()
  verdict = check(hostile, row)
  assert time.perf_counter() - start < 1.0
  assert verdict.reward == 0.0 and isinstance(verdict.feedback, str)


def test_verifier_in_the_worker_pool_handles_invalid_unicode():
  verifier = get_verifier("tooluse")
  row = row_with(["searchAxolotlImages"])
  assert verifier("Action: \ud800\nAction Input: {}", {"answer": row["answer"]}).reward == 0.0
  assert verifier(react(gold(row)), {"answer": row["answer"]}).reward == 1.0


def _wrong_answers(row, rng):
  """Several wrong completions for a row: each perturbs the gold calls one way."""
  calls = required(row)
  tool, args = calls[0]
  names = sorted(args)
  out = [react(calls[1:]) or "Action: none", react(calls + calls[:1]),
         react([(tool + "2", args)] + calls[1:]), react([(tool.lower(), args)]),
         react([(tool, {**args, "extra": "v"})] + calls[1:])]
  for name in names:
    value = args[name]
    out.append(react([(tool, {**args, name: str(value) + "x"})] + calls[1:]))
    out.append(react([(tool, {**args, name: [value]})] + calls[1:]))
    if value not in ("", None):  # leaving out an unset argument is right
      out.append(react([(tool, {k: v for k, v in args.items() if k != name})] + calls[1:]))
  if names:
    out.append(react([(tool, {name: rng.randint(100, 999) for name in names})]))
  return out


def _leaves(value):
  if isinstance(value, dict):
    return [leaf for item in value.values() for leaf in _leaves(item)]
  if isinstance(value, list):
    return [leaf for item in value for leaf in _leaves(item)]
  return [] if value in (None, "") else [json.dumps(value) if isinstance(value, bool) else str(value)]


def _gold_texts(row):
  return [t for t, _, _ in gold_calls(row["answer"])] + _leaves([a for _, a, _ in gold_calls(row["answer"])])


def test_feedback_never_contains_a_gold_tool_name_or_value():
  rng = random.Random(0)
  checked = 0
  for row in ROWS:
    secrets = _gold_texts(row)
    for completion in _wrong_answers(row, rng):
      verdict = check(completion, row)
      assert verdict.reward == 0.0, completion
      for secret in secrets:
        pattern = (rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])" if len(secret) < 2
                   else re.escape(secret))
        assert not re.search(pattern, verdict.feedback, re.IGNORECASE), (secret, verdict)
      checked += 1
  assert checked > 100
