"""Final-answer extraction."""

import pytest

from amrsd.rewards import extract


@pytest.mark.parametrize("text, expected", [
    (r"so \boxed{\frac{1}{2}}.", r"\frac{1}{2}"),
    (r"\boxed{\left\{1, \{2\}\right\}} then \boxed{7}", "7"),
    (r"\boxed{a^{b^{c}}}", "a^{b^{c}}"),
    (r"\fbox{3}", "3"),
    (r"the answer is \boxed 5", "5"),
    (r"\boxed{12", None),
    ("no box here", None),
])
def test_boxed_answer_handles_nesting_and_malformed_boxes(text, expected):
  assert extract.boxed_answer(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("5 + 3 = 8", "8"),
    ("It costs $1,000.", "1000"),
    ("-12.5 and then 7", "7"),
    ("The answer is 41.", "41"),
    ("#### 1,234\nsome trailing words", "1234"),
    (r"blah 3 \boxed{\$18} and 4 later", "18"),
    ("nothing numeric", None),
    ("", None),
])
def test_numeric_answer_prefers_box_then_hash_then_statement_then_last(text, expected):
  assert extract.numeric_answer(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("(B)", "B"),
    ("Answer: C", "C"),
    ("I think the answer is b.", "B"),
    (r"\boxed{D}", "D"),
    ("Let me think.\nE", "E"),
    ("A is wrong because ... so the answer is (C)", "C"),
    ("no letter here at all", None),
    ("", None),
])
def test_choice_letter(text, expected):
  assert extract.choice_letter(text) == expected
