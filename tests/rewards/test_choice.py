"""The mcq verifier on real SciKnowEval rows (tests/fixtures/domains, copied from SDPO's
split), answered in the format each row's system prompt asks for."""

import json

import pytest

from amrsd.rewards import feedback as fb
from amrsd.rewards.registry import run_check
from tests.conftest import FIXTURES

ROWS = [json.loads(line) for line in open(FIXTURES / "domains" / "sciknoweval_test.jsonl")]
LETTERS = "ABCD"


def check(completion, row):
  return run_check("mcq", completion, {"answer": row["answer"]}, None)


def as_asked(letter):
  """What the rows' system prompt asks for, with the newlines of its example."""
  return f"<reasoning>\nThe second option fits the data best.\n</reasoning>\n<answer>\n{letter}\n</answer>"


def test_rows_ask_for_the_answer_tag():
  assert all("<answer>" in row["system"] and row["answer"] in LETTERS for row in ROWS)


@pytest.mark.parametrize("index", range(len(ROWS)))
def test_answer_in_the_asked_format_scores_by_letter(index):
  row = ROWS[index]
  assert check(as_asked(row["answer"]), row) == (1.0, "correct")
  for letter in set(LETTERS) - {row["answer"]}:
    verdict = check(as_asked(letter), row)
    assert verdict == (0.0, f"answer {letter} is not the correct choice")


@pytest.mark.parametrize("completion", [
    "<answer>B</answer>", "<answer> (B) </answer>", "<ANSWER>\nb\n</ANSWER>",
    "<answer>B: -2.436</answer>", "<reasoning>A or C? No.</reasoning><answer>B",
    "<answer>The answer is B.</answer>", "First (A) seemed right.\n<answer>\nB\n</answer>",
    "Answer: B",
])
def test_answer_tag_forms_and_older_forms_read_b(completion):
  assert check(completion, {"answer": "B"}).reward == 1.0


def test_last_answer_tag_wins_and_an_empty_tag_falls_back_to_the_text():
  assert check("<answer>A</answer> wait, <answer>B</answer>", {"answer": "B"}).reward == 1.0
  assert check("The answer is B.\n<answer>\n...\n</answer>", {"answer": "B"}).reward == 1.0


def test_feedback_never_names_the_gold_letter():
  for row in ROWS:
    for completion in [as_asked(x) for x in LETTERS if x != row["answer"]] + [
        "no idea", "<answer></answer>", "<answer>E</answer>"]:
      verdict = check(completion, row)
      assert verdict.reward == 0.0 and not fb.mentions(verdict.feedback, row["answer"]), verdict
