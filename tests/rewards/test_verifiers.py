"""Each verifier on right, wrong, malformed, empty and hostile answers (checks run
inline here; the worker pool has its own tests), and feedback never shows the gold."""

import pytest

from amrsd import rewards
from amrsd.rewards import feedback as fb
from amrsd.rewards.registry import run_check

MATH = {"answer": r"\frac{14}{3}", "task": "math"}


def check(name, completion, record, time_limit=2):
  return run_check(name, completion, record, time_limit)


@pytest.mark.parametrize("completion", [
    r"Thus \boxed{\frac{14}{3}}.", r"\boxed{4\frac{2}{3}}", r"\boxed{\dfrac{14}{3}}",
    r"$x = \boxed{14/3}$"])
def test_math_accepts_equivalent_forms(completion):
  assert check("math", completion, MATH) == (1.0, "correct")


@pytest.mark.parametrize("gold, completion", [
    (r"\left( 3, \frac{\pi}{2} \right)", r"\boxed{(3, \frac{\pi}{2})}"),
    ("[1,2)", r"\boxed{[1, 2)}"),
    ("10", r"\boxed{10.0}"),
    ("x^2+1", r"\boxed{1 + x^2}"),
])
def test_math_tuples_intervals_decimals_polynomials(gold, completion):
  assert check("math", completion, {"answer": gold}).reward == 1.0


def test_math_wrong_answer_quotes_it():
  assert check("math", r"\boxed{41}", {"answer": "42"}) == (0.0, "answer 41 does not match the reference")


def test_math_wrong_interval_is_wrong():
  assert check("math", r"\boxed{[1, 2]}", {"answer": "[1,2)"}).reward == 0.0


def test_math_without_box_has_no_answer_unless_record_asks_for_last_number():
  assert check("math", "the result is 42", {"answer": "42"}).feedback.startswith(fb.NO_ANSWER)
  assert check("math", "the result is 42", {"answer": "42", "extract": "last_number"}).reward == 1.0


@pytest.mark.parametrize("completion", [r"\boxed{", r"\boxed{}", r"\boxed{\frac{1}{2"])
def test_math_malformed_box_is_format_broken(completion):
  verdict = check("math", completion, {"answer": "1/2"})
  assert verdict.reward == 0.0 and verdict.feedback.startswith("format broken")


def test_math_empty_completion():
  assert check("math", "", MATH).feedback.startswith(fb.NO_ANSWER)


def test_math_unparsable_reference_is_reported_as_data_problem():
  assert check("math", r"\boxed{1}", {"answer": ""}).feedback == fb.BAD_REFERENCE


def test_math_hostile_tower_times_out_inline_with_soft_limit():
  verdict = check("math", r"\boxed{9^{9^{9^{9^{9}}}}}", {"answer": "5"}, time_limit=1)
  assert verdict == (0.0, fb.TIMED_OUT)


@pytest.mark.parametrize("completion", [
    "#### 1000", "The answer is $1,000.", r"\boxed{1,000}", "so 1000.0", "We get 1000 dollars"])
def test_gsm8k_accepts_number_spellings(completion):
  assert check("gsm8k", completion, {"answer": "work 10*100=<<10*100=1000>>1000\n#### 1,000"}).reward == 1.0


def test_gsm8k_prefers_the_stated_answer_over_the_last_number():
  assert check("gsm8k", "The answer is 18. (I checked 3 times)", {"answer": "#### 18"}).reward == 1.0
  assert check("gsm8k", "#### 17\nwait, 18", {"answer": "18"}).reward == 0.0


def test_gsm8k_wrong_empty_and_hostile():
  assert check("gsm8k", "#### 17", {"answer": "#### 18"}) == (0.0, "answer 17 does not match the reference")
  assert check("gsm8k", "", {"answer": "#### 18"}) == (0.0, fb.NO_ANSWER)
  assert check("gsm8k", "9" * 100_000 + "^9^9", {"answer": "#### 18"}).reward == 0.0


@pytest.mark.parametrize("completion, reward", [
    ("The answer is (B).", 1.0), ("Answer: b", 1.0), ("(C)", 0.0), ("I don't know", 0.0), ("", 0.0)])
def test_mcq(completion, reward):
  assert check("mcq", completion, {"answer": "B"}).reward == reward


def test_mcq_feedback_names_the_wrong_letter_and_missing_letter():
  assert check("mcq", "(C)", {"answer": "B"}).feedback == "answer C is not the correct choice"
  assert check("mcq", "no idea", {"answer": "B"}).feedback == (
      "no option letter found; end with <answer>, the letter, </answer>")


@pytest.mark.parametrize("completion, reward", [
    ("5 + 3 = 8", 1.0), ("8", 1.0), (r"\boxed{8}", 1.0), ("5 + 3 = 9", 0.0), ("eight", 0.0), ("", 0.0)])
def test_arithmetic_takes_the_last_number(completion, reward):
  assert check("arithmetic", completion, {"answer": "8"}).reward == reward


@pytest.mark.parametrize("family", ["chain_sum", "basic_arithmetic"])
def test_reasoning_gym_families_score_with_their_own_scorer(family):
  from amrsd import data
  record = data.ProceduralSource(family, size=1)[0]
  assert check(family, f"{record['problem']} {record['answer']}", record).reward == 1.0
  wrong = str(int(record["answer"]) + 1)
  assert check(family, wrong, record).reward == 0.0
  assert check(family, "", record).feedback == fb.NO_ANSWER


def test_unknown_verifier_lists_valid_names():
  with pytest.raises(ValueError, match="valid names: arithmetic, basic_arithmetic, bfcl, "
                     "chain_sum, gsm8k, math, mcq, tooluse, tooluse_merged"):
    rewards.get_verifier("maths")


def test_bad_record_is_rejected_with_a_clear_error():
  with pytest.raises(ValueError, match="'answer' field"):
    check("math", r"\boxed{1}", {"gold": "1"})
  with pytest.raises(TypeError, match="completion must be str"):
    check("math", None, {"answer": "1"})


# Wrong answers built to tempt a leak: the gold inside the quote, as a prefix, boxed twice.
LEAK_CASES = [
    ("math", r"\boxed{180}", {"answer": "18"}),
    ("math", r"\boxed{18.5}", {"answer": "18"}),
    ("math", r"\boxed{\frac{14}{3} + 1}", {"answer": r"\frac{14}{3}"}),
    ("math", r"\boxed{\frac{14}{3", {"answer": r"\frac{14}{3}"}),
    ("gsm8k", "#### 1,8000", {"answer": "#### 18"}),
    ("gsm8k", "#### 118", {"answer": "#### 18"}),
    ("arithmetic", "5 + 3 = 88", {"answer": "8"}),
    ("arithmetic", "-8", {"answer": "8"}),
    ("mcq", "(A)", {"answer": "B"}),
    ("mcq", "(B) is tempting, but the answer is A", {"answer": "B"}),
]


@pytest.mark.parametrize("name, completion, record", LEAK_CASES)
def test_feedback_never_contains_the_gold(name, completion, record):
  reward, feedback = check(name, completion, record)
  gold = record["answer"].split("####")[-1].strip()
  assert reward == 0.0
  assert gold not in feedback, feedback
