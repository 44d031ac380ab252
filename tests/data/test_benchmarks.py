"""The evaluation sets shipped in the package: full row counts, fields, gold answers."""

import json

import pytest

from amrsd import data, prompts, rewards

ROWS = {"aime24": 30, "aime25": 30, "amc23": 40, "hmmt25_feb": 30, "hmmt25_nov": 30,
        "math500": 500, "gsm8k": 1319, "sciknoweval_biology": 50, "sciknoweval_chemistry": 210,
        "sciknoweval_material": 94, "sciknoweval_physics": 80, "tooluse": 68}


def test_every_set_loads_by_name_with_its_full_row_count():
  assert list(data.BENCHMARKS) == list(ROWS)
  for name, rows in ROWS.items():
    records = data.load_benchmark(name)
    assert len(records) == rows, name
    assert all(r["answer"] and r["problem"] for r in records), name


def test_rows_keep_what_their_verifier_and_prompt_need():
  gsm8k = data.load_benchmark("gsm8k")[0]
  assert gsm8k["answer"] == "18" and gsm8k["task"] == "gsm8k" and "####" not in gsm8k["solution"]
  math500 = data.load_benchmark("math500")[0]
  assert math500["task"] == "math" and math500["solution"] and math500["level"]
  assert data.load_benchmark("aime24")[0]["solution"] is None
  physics = data.load_benchmark("sciknoweval_physics")
  assert {r["answer"] for r in physics} <= set("ABCD") and all(r["task"] == "mcq" for r in physics)
  assert "<answer>" in physics[0]["system"] and "\nA: " in physics[0]["problem"]
  for row in data.load_benchmark("tooluse"):
    calls = json.loads(row["answer"])
    assert row["task"] == "tooluse" and "Action:" in row["problem"]
    assert calls and all({"Action", "Action_Input"} <= set(call) for call in calls)


@pytest.mark.parametrize("name, written", [
    ("aime25", "so the answer is \\boxed{{{answer}}}."),
    ("math500", "Hence \\boxed{{{answer}}}."),
    ("gsm8k", "The answer is {answer}."),
    ("sciknoweval_chemistry", "The answer is {answer}."),
])
def test_gold_answers_pass_their_own_verifier(name, written):
  records = data.load_benchmark(name)[:5]
  verifier = data.BENCHMARKS[name].verifier
  completions = [written.format(answer=r["answer"]) for r in records]
  verdicts = rewards.verify_batch(verifier, completions, records, workers=0)
  assert [v.reward for v in verdicts] == [1.0] * 5
  wrong = [records[1], records[0]] if records[0]["answer"] != records[1]["answer"] else None
  if wrong:
    assert rewards.verify_batch(verifier, completions[:2], wrong, workers=0)[0].reward == 0.0


def test_shipped_chats_carry_the_rows_system_message():
  mcq = data.load_benchmark("sciknoweval_biology")[0]
  spec = data.BENCHMARKS["sciknoweval_biology"]
  assert prompts.chat_messages(mcq, spec.template) == [
      {"role": "system", "content": mcq["system"]}, {"role": "user", "content": mcq["problem"]}]
  tool = data.load_benchmark("tooluse")[0]  # its system field is null: no system message
  assert prompts.chat_messages(tool, data.BENCHMARKS["tooluse"].template) == [
      {"role": "user", "content": tool["problem"]}]
  aime = data.load_benchmark("aime24")[0]
  (user,) = prompts.chat_messages(aime, data.BENCHMARKS["aime24"].template)
  assert user["content"] == aime["problem"] + "\n\nPut your final answer in \\boxed{}."


def test_each_call_returns_fresh_records():
  first = data.load_benchmark("amc23")
  first[0]["answer"] = "changed"
  assert data.load_benchmark("amc23")[0]["answer"] != "changed"


def test_unknown_name_lists_the_shipped_sets():
  with pytest.raises(ValueError, match="unknown benchmark 'aime23'; the sets shipped with amrsd "
                                       "are: aime24, aime25, amc23, .*, tooluse"):
    data.load_benchmark("aime23")


def test_a_benchmark_name_is_a_dataset_spec():
  source = data.open_dataset("hmmt25_nov")
  assert len(source) == 30 and source[0] == data.load_benchmark("hmmt25_nov")[0]
