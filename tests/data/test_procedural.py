"""Procedural sources: determinism, disjoint held-out split, correct answers."""

import pytest

from amrsd import data
from amrsd.rewards.registry import run_check


def test_items_are_deterministic_in_seed_and_index():
  a = data.ProceduralSource("arithmetic", seed=3, size=50, levels=(1, 3, 5))
  b = data.ProceduralSource("arithmetic", seed=3, size=50, levels=(1, 3, 5))
  c = data.ProceduralSource("arithmetic", seed=4, size=50, levels=(1, 3, 5))
  assert [b[i] for i in reversed(range(50))] == [a[i] for i in reversed(range(50))]
  assert [a[i]["problem"] for i in range(50)] != [c[i]["problem"] for i in range(50)]


@pytest.mark.parametrize("task, options", [
    ("arithmetic", dict(levels=(1,))),
    ("chain_sum", dict(min_terms=2, max_terms=2, min_digits=1, max_digits=1)),
])
def test_heldout_split_is_disjoint_from_train(task, options):
  train = data.ProceduralSource(task, size=400, **options)
  heldout = data.ProceduralSource(task, split="heldout", size=100, **options)
  train_problems = {train[i]["problem"] for i in range(len(train))}
  heldout_problems = {heldout[i]["problem"] for i in range(len(heldout))}
  assert heldout_problems and not train_problems & heldout_problems


@pytest.mark.parametrize("level", sorted(data.ARITHMETIC_LEVELS))
def test_arithmetic_answers_and_solutions_are_right(level):
  source = data.ProceduralSource("arithmetic", size=30, levels=(level,))
  spec = data.ARITHMETIC_LEVELS[level]
  for i in range(len(source)):
    record = source[i]
    expression = record["problem"].removeprefix("What is ").removesuffix("?")
    assert int(record["answer"]) == eval(expression)  # plain integer arithmetic
    assert record["solution"].startswith(expression)
    assert record["solution"].endswith(f"= {record['answer']}")
    assert record["task"] == "arithmetic" and record["difficulty"] == level
    operands = expression.replace("*", "+").replace("-", "+").split("+")
    assert spec.terms[0] <= len(operands) <= spec.terms[1]
    assert run_check("arithmetic", record["solution"], record, None).reward == 1.0


def test_arithmetic_explicit_knobs():
  record = data.ProceduralSource("arithmetic", size=1, terms=(4, 4), digits=(3, 3),
                                 operators="*")[0]
  operands = record["problem"].removeprefix("What is ").removesuffix("?").split(" * ")
  assert len(operands) == 4 and all(len(x) == 3 for x in operands)
  assert record["difficulty"] == "custom"


@pytest.mark.parametrize("options, message", [
    (dict(levels=(9,)), "unknown arithmetic levels"),
    (dict(terms=(1, 2)), "terms must satisfy"),
    (dict(operators="/"), "operators must be"),
])
def test_bad_task_options_are_rejected(options, message):
  with pytest.raises(ValueError, match=message):
    data.ProceduralSource("arithmetic", **options)


def test_unknown_task_and_split():
  with pytest.raises(ValueError, match="valid: arithmetic, chain_sum, basic_arithmetic"):
    data.ProceduralSource("sudoku")
  with pytest.raises(ValueError, match="valid: train, heldout"):
    data.ProceduralSource("arithmetic", split="test")
