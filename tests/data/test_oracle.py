"""Oracle hints of the procedural tasks: content on hand-made responses, the leak filter,
and the trainer path (reflection.hint_source = oracle) on the real model."""

import re

import numpy as np
import pytest

from amrsd import config as config_lib
from amrsd import reflection
from amrsd.data import oracle
from amrsd.data.procedural import ProceduralSource
from amrsd.hint_filter import gold_answers, leaks
from amrsd.metrics import read_metrics

SUM = {"task": "arithmetic", "problem": "What is 47 + 38?", "answer": "85",
       "solution": "47 + 38 = 85", "difficulty": 4}
CHAIN = {"task": "arithmetic", "problem": "What is 9 - 4 + 6?", "answer": "11",
         "solution": "9 - 4 + 6 = 5 + 6 = 11", "difficulty": 3}
MIXED = {"task": "arithmetic", "problem": "What is 2 + 3 * 4?", "answer": "14",
         "solution": "2 + 3 * 4 = 2 + 12 = 14", "difficulty": 5}
BRACKET = {"task": "basic_arithmetic", "problem": "Calculate ( 56 + -33 ) - 84.",
           "answer": "-61", "solution": "( 56 + -33 ) - 84 = -61",
           "metadata": {"expression": "( 56 + -33 ) - 84"}}


def _passes_filter(hint, record, response):
  return not leaks(hint, gold_answers(record, "arithmetic"), [response], verifier="arithmetic")


# (record, response, words the hint must hold): one row per diagnosis.
CASES = [
    ("wrong digit", SUM, "The answer is 75.", ["second digit from the right", "carry"]),
    ("wrong ones digit", SUM, "84", ["last digit"]),
    ("wrong operation", CHAIN, "-1", ["second operation", "'+ 6'", "add there, or subtract"]),
    ("wrong written step", CHAIN, "9 - 4 = 6, 6 + 6 = 12", ["You wrote 9 - 4 = 6",
                                                            "subtraction"]),
    ("stopped early", CHAIN, "5", ["stopped after 9 - 4", "every term"]),
    # A chain written at once claims nothing about its last operation alone.
    ("wrong chain", CHAIN, "9 - 4 + 6 = 12", ["last digit"]),
    ("order of operations", MIXED, "20", ["Which comes first", "multiplication"]),
    ("sign", BRACKET, "61", ["sign"]),
    ("malformed answer", SUM, "I think it is a big number.", ["without a number"]),
]


@pytest.mark.parametrize("name,record,response,expected", CASES, ids=[c[0] for c in CASES])
def test_failed_responses_get_a_pointer_to_what_went_wrong(name, record, response, expected):
  hint = oracle.oracle_hint(record, response, correct=False)
  for words in expected:
    assert words in hint, (name, hint)
  assert "?" in hint or "Redo" in hint        # a question or a pointer
  assert record["answer"] not in re.findall(r"-?\d+", hint)
  assert _passes_filter(hint, record, response), hint
  retry = oracle.oracle_hint(record, response, correct=False, numbers=False)
  assert not re.search(r"\d", retry), retry   # the retry quotes no number at all
  assert _passes_filter(retry, record, response), retry


@pytest.mark.parametrize("record,expected", [
    (SUM, "carried between the columns"), (CHAIN, "every term in order"),
    (MIXED, "multiplication before the addition"), (BRACKET, "bracket")])
def test_correct_responses_are_told_what_was_right(record, expected):
  hint = oracle.oracle_hint(record, record["answer"], correct=True)
  assert hint.startswith("Your answer is right") and expected in hint
  assert _passes_filter(hint, record, record["answer"]), hint


def test_expressions_of_every_task_evaluate_to_the_generators_answer():
  """The oracle's evaluator against Python's own arithmetic on the generators' records."""
  for task, options in [("arithmetic", {"levels": (1, 2, 3, 4, 5)}),
                        ("chain_sum", {}), ("basic_arithmetic", {})]:
    source = ProceduralSource(task, size=40, **options)
    for i in range(len(source)):
      record = source[i]
      expr = oracle.expression(record)
      steps = oracle.evaluate(expr)
      assert steps[-1].value == eval(expr, {"__builtins__": {}}), (task, expr)
      assert steps[-1].value == int(record["answer"]), (task, expr, record["answer"])


def test_every_hint_on_generated_problems_passes_the_filter_on_its_first_or_second_try():
  """Random wrong answers on generated problems: the first try may quote a number equal
  to the answer (an operand can be), the number-free retry never does."""
  rng = np.random.default_rng(0)
  first_passed = 0
  source = ProceduralSource("arithmetic", size=60, levels=(1, 2, 3, 4, 5))
  for i in range(len(source)):
    record = source[i]
    gold = int(record["answer"])
    response = str(gold + int(rng.choice([-10, -2, -1, 1, 3, 10])))
    first = oracle.oracle_hint(record, response, correct=False)
    first_passed += _passes_filter(first, record, response)
    retry = oracle.oracle_hint(record, response, correct=False, numbers=False)
    assert _passes_filter(retry, record, response), (record["problem"], response, retry)
  assert first_passed >= 50


def test_tasks_without_an_oracle_are_named():
  with pytest.raises(ValueError, match="task 'gsm8k' has no oracle"):
    oracle.oracle_hint({"task": "gsm8k", "problem": "p", "answer": "1"}, "2", False)
  with pytest.raises(ValueError, match="not an integer"):
    oracle.evaluate("2 ** 3")


def test_reflect_with_the_oracle_writes_filtered_hints_and_counts_them():
  completions = ["84", "85", "I do not know", "85"]
  rewards = [0.0, 1.0, 0.0, 1.0]
  packets = reflection.diagnose([SUM], completions, rewards, ["wrong"] * 4, 4)
  hints, stats = reflection.reflect(oracle.write_hints, [SUM], completions, packets, 4,
                                    rewards=rewards, verifier="arithmetic",
                                    request=oracle.hint_request)
  assert "last digit" in hints[0] and hints[1].startswith("Your answer is right")
  assert "without a number" in hints[2]
  assert stats.hint_requests == 4 and stats.hints_made == 4 and stats.leak_rate == 0.0
  # A hint the filter refuses is retried number-free: 0 + 7 quotes the answer 7.
  record = {"task": "arithmetic", "problem": "What is 0 + 7?", "answer": "7",
            "solution": "0 + 7 = 7"}
  packets = reflection.diagnose([record], ["0 + 7 = 8", "7"], [0.0, 1.0], ["x", ""], 2)
  hints, stats = reflection.reflect(oracle.write_hints, [record], ["0 + 7 = 8", "7"], packets,
                                    2, rewards=[0.0, 1.0], verifier="arithmetic",
                                    request=oracle.hint_request)
  assert stats.hints_rejected == 2 and stats.hints_retried == 2 and stats.hints_made == 2
  assert not any(re.search(r"\d", h) for h in hints)


def test_config_refuses_the_oracle_where_the_task_has_none():
  config = config_lib.default_config()
  config.reflection.hint_source = "oracle"
  config_lib.validate(config)
  config.data.task = "jsonl"
  with pytest.raises(ValueError, match="task 'jsonl' has no oracle"):
    config_lib.validate(config)
  config.data.task = "chain_sum"
  config.reflection.teacher_context = "raw_reference"
  with pytest.raises(ValueError, match="teacher_context='raw_reference'"):
    config_lib.validate(config)
  config.reflection.hint_source = "teacher"
  with pytest.raises(ValueError, match="hint_source='teacher' is not valid; choose one of "
                                       "model, oracle"):
    config_lib.validate(config)


@pytest.mark.slow
def test_two_amrsd_steps_with_oracle_hints_on_the_real_model(tmp_path):
  """Rollouts, oracle hints through the leak filter, teacher contexts, gate and update,
  on SmolLM2-135M with tiny shapes."""
  from amrsd.trainer import Trainer
  config = config_lib.default_config()
  config.workdir = str(tmp_path / "oracle")
  config.reflection.hint_source = "oracle"
  config.train.steps = 2
  # Not annealed out at the second step (half of train.steps), where no hint is asked for.
  config.algorithm.anneal_steps = 4
  config.train.trainable = "top_layers"
  config.train.top_layers = 1
  config.rollout.prompts_per_step = 2
  config.rollout.group_size = 4
  config.rollout.max_new_tokens = 8
  config.eval.size = 2
  config.log.progress = False
  final = Trainer(config).train()
  assert final["step"] == 2
  rows = [r for r in read_metrics(tmp_path / "oracle" / "metrics.jsonl") if r["step"] > 0]
  assert len(rows) == 2 and all(np.isfinite(r["loss"]) for r in rows)
  asked = [r for r in rows if r["hints_skipped"] < 8]
  assert asked, "no step had a group with reward variance; pick another seed"
  for r in asked:
    # Group hints: one request per group that needs one, and every request gets a hint.
    assert r["hint_requests"] >= 1 and r["hints_made"] + r["hints_empty"] == 8
    assert r["hints_made"] > 0 and r["hint_length_mean"] > 0
    # The oracle, not the sampler, wrote them: the sampler reports its hints' tokens.
    assert r["hint_tokens_mean"] == 0.0
    assert 0.0 <= r["hint_leak_rate"] <= 1.0 and 0.0 <= r["gate_fraction"] <= 1.0
