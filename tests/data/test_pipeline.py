"""The grain prompt pipeline: batches, prompt format, length filter, epochs, resume."""

import collections
import json

import pytest

from amrsd import data
from tests.conftest import FIXTURES


def make(source, tokenizer, **overrides):
  options = dict(prompts_per_step=4, seed=7)
  options.update(overrides)
  return data.PromptPipeline(source, tokenizer, **options)


@pytest.fixture
def source():
  return data.ProceduralSource("arithmetic", size=40, levels=(1, 3, 5))


def test_batches_hold_formatted_prompts(source, word_tokenizer):
  pipeline = make(source, word_tokenizer, prompt_template="{problem} Answer with a number.",
                  system_prompt="Be brief.")
  batch = next(pipeline)
  assert len(batch) == 4
  record = batch[0]
  assert record["prompt"] == (f"<system> Be brief. </s> <user> {record['problem']} Answer with a "
                              "number. </s> <assistant>")
  assert record["prompt_ids"] == word_tokenizer(record["prompt"], add_special_tokens=False)["input_ids"]
  assert {"problem", "answer", "solution", "task", "difficulty"} <= set(record)


def test_epochs_visit_every_record_once_each_in_a_new_order(source, word_tokenizer):
  batches = list(make(source, word_tokenizer, num_epochs=2))
  problems = [r["problem"] for batch in batches for r in batch]
  assert len(problems) == 80
  first, second = problems[:40], problems[40:]
  expected = collections.Counter(source[i]["problem"] for i in range(40))
  assert collections.Counter(first) == expected == collections.Counter(second)
  assert first != second


def test_seed_changes_the_order(source, word_tokenizer):
  a = [r["problem"] for r in next(make(source, word_tokenizer, seed=1))]
  b = [r["problem"] for r in next(make(source, word_tokenizer, seed=2))]
  assert a != b


def test_long_prompts_are_dropped_and_counted(source, word_tokenizer):
  lengths = [len(make(source, word_tokenizer).format(source[i])["prompt_ids"]) for i in range(40)]
  budget = sorted(lengths)[20]
  pipeline = make(source, word_tokenizer, max_prompt_tokens=budget, num_epochs=1, prompts_per_step=1)
  kept = [r for batch in pipeline for r in batch]
  assert all(len(r["prompt_ids"]) <= budget for r in kept)
  assert pipeline.stats["filtered_too_long"] == sum(n > budget for n in lengths) == 40 - len(kept)


def test_resume_from_saved_state_sees_the_same_batches(source, word_tokenizer):
  budget = 16  # drops some prompts, so the counter must be restored too
  reference = make(source, word_tokenizer, max_prompt_tokens=budget)
  for _ in range(7):  # into the second epoch
    next(reference)
  state = json.loads(json.dumps(reference.get_state()))
  expected = [next(reference) for _ in range(15)]
  resumed = make(source, word_tokenizer, max_prompt_tokens=budget)
  resumed.set_state(state)
  assert [next(resumed) for _ in range(15)] == expected
  assert resumed.stats == reference.stats and reference.stats["filtered_too_long"] > 0


def test_file_source_through_the_pipeline_reports_skipped_rows(tmp_path, word_tokenizer):
  path = tmp_path / "gsm8k_small.jsonl"
  rows = [json.dumps({"question": f"What is {i} + 1 ?", "answer": f"#### {i + 1}"}) for i in range(9)]
  path.write_text("\n".join(rows[:4] + ["{broken"] + rows[4:]) + "\n")
  pipeline = make(data.open_dataset(str(path), skip_bad_rows=True), word_tokenizer,
                  num_epochs=1)
  assert sum(len(b) for b in pipeline) == 8  # 9 good rows, the last partial batch dropped
  assert pipeline.stats == {"filtered_too_long": 0, "skipped_bad_rows": 1}


def test_template_with_unknown_field_fails_at_construction(source, word_tokenizer):
  with pytest.raises(ValueError, match=r"uses field 'question'.*fields: answer, difficulty"):
    make(source, word_tokenizer, prompt_template="{question}")


def test_budget_no_prompt_fits_raises_instead_of_looping(source, word_tokenizer):
  with pytest.raises(ValueError, match="every prompt .* is longer than max_prompt_tokens=2"):
    next(make(source, word_tokenizer, max_prompt_tokens=2))


def test_a_rows_own_system_prompt_is_the_system_message(word_tokenizer):
  # Real SciKnowEval rows: each carries the system prompt that asks for <answer>X</answer>.
  source = data.open_dataset(str(FIXTURES / "domains" / "sciknoweval_test.jsonl"))
  pipeline = make(source, word_tokenizer, system_prompt="Be brief.", shuffle=False)
  record = next(pipeline)[0]
  assert record["system"].strip().startswith("Given a question and four options")
  assert record["prompt"] == (f"<system> {record['system']} </s> <user> {record['problem']} </s> "
                              "<assistant>")


def test_rows_without_a_system_prompt_get_the_pipelines(word_tokenizer):
  source = data.open_dataset(str(FIXTURES / "domains" / "tooluse_test.jsonl"))
  record = next(make(source, word_tokenizer, system_prompt="Be brief.", shuffle=False))[0]
  assert record["system"] is None and record["prompt"].startswith("<system> Be brief. </s> <user>")


def test_held_out_prompts_over_the_budget_are_left_out_and_named(tmp_path, word_tokenizer,
                                                                 capsys):
  path = tmp_path / "held_out.jsonl"
  rows = [{"problem": "What is 1 + 1 ?", "answer": "2", "task": "arithmetic"},
          {"problem": "What is 1 + 1 ? " * 100_000, "answer": "2", "task": "arithmetic"},
          {"problem": "What is 2 + 2 ?", "answer": "4", "task": "arithmetic"}]
  path.write_text("".join(json.dumps(r) + "\n" for r in rows))
  source = data.open_dataset(str(path))
  pipeline = make(source, word_tokenizer, max_prompt_tokens=20)
  kept = pipeline.held_out(source, 3)
  assert [r["answer"] for r in kept] == ["2", "4"]
  assert f"left out 1 problem(s) whose prompt is longer than data.max_prompt_tokens=20: " \
         f"{path}:2" in capsys.readouterr().err
  with pytest.raises(ValueError, match=rf"every held-out prompt is longer .*=5: {path}:1, "):
    make(source, word_tokenizer, max_prompt_tokens=5).held_out(source, 3)
