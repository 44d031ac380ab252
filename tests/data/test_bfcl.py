"""BFCL categories from the bfcl-eval package as a data source."""

import json

import pytest

from amrsd import data
from amrsd.data import bfcl


def test_splits_partition_the_rows_and_stay_fixed():
  train = data.open_dataset("bfcl:simple,parallel", split="train")
  heldout = data.open_dataset("bfcl:simple,parallel", split="heldout")
  every = data.open_dataset("bfcl:simple,parallel", split="all")
  train_ids, heldout_ids = {r["id"] for r in train.records}, {r["id"] for r in heldout.records}
  assert not train_ids & heldout_ids
  assert train_ids | heldout_ids == {r["id"] for r in every.records}
  assert len(every) == 400 + 200  # BFCL v4: simple_python 400, parallel 200
  assert 0.05 < len(heldout) / len(every) < 0.15
  assert heldout_ids == {r["id"] for r in data.open_dataset("bfcl:parallel,simple",
                                                            split="heldout").records}


def test_records_carry_bfcls_prompt_and_possible_answers():
  record = data.open_dataset("bfcl:simple", split="all")[0]
  assert record["id"] == "simple_python_0" and record["task"] == "bfcl"
  assert record["problem"].startswith("Find the area of a triangle")
  assert "[func_name1(params_name1=params_value1" in record["system"]
  assert '"name": "calculate_triangle_area"' in record["system"]
  assert json.loads(record["answer"])[0]["calculate_triangle_area"]["base"] == [10]
  assert json.loads(record["functions"])[0]["name"] == "calculate_triangle_area"


def test_live_rows_with_their_own_system_prompt_keep_it_after_bfcls():
  rows = data.open_dataset("bfcl:live_simple", split="all").records
  assert len(rows) == 258
  assert sum("\n\n" in r["system"].split("Here is a list of functions")[-1] for r in rows) >= 11


@pytest.mark.parametrize("spec, split, message", [
    ("bfcl:simple,java", "train", "unknown BFCL categories"),
    ("bfcl:", "train", "unknown BFCL categories"),
    ("bfcl:simple", "test", "bfcl split 'test' is not valid"),
    ("bfcl_mt:base,simple", "train", "unknown BFCL multi-turn categories"),
])
def test_bad_names_are_rejected_with_the_valid_ones(spec, split, message):
  with pytest.raises(ValueError, match=message):
    data.open_dataset(spec, split=split)


def test_categories_name_bfcls_own():
  assert bfcl.CATEGORIES["simple"] == "simple_python"
  assert set(bfcl.CATEGORIES) >= {"multiple", "parallel", "parallel_multiple", "live_simple"}


def test_multi_turn_episodes_carry_turns_state_and_ground_truth():
  every = data.open_dataset("bfcl_mt:base,miss_func,miss_param,long_context", split="all")
  assert len(every) == 4 * 200  # BFCL v4: 200 episodes per multi-turn category
  record = every[0]
  assert record["id"] == "multi_turn_base_0" and record["env"] == "bfcl_multi_turn"
  turns, answer = json.loads(record["question"]), json.loads(record["answer"])
  assert len(turns) == len(answer) == 4 and answer[0][0] == "cd(folder='document')"
  assert json.loads(record["involved_classes"]) == ["TwitterAPI", "GorillaFileSystem"]
  assert "GorillaFileSystem" in json.loads(record["initial_config"])
  assert record["problem"] == turns[0][0]["content"]
  assert '"name": "mkdir"' in record["system"]
  held_out = json.loads(every[200]["missed_function"])  # multi_turn_miss_func_0
  assert [f["name"] for f in held_out["3"]] == ["sort"]
  assert '"name": "sort"' not in every[200]["system"]


def test_multi_turn_splits_partition_the_episodes():
  ids = {split: {r["id"] for r in data.open_dataset("bfcl_mt:base", split=split).records}
         for split in ("train", "heldout")}
  assert not ids["train"] & ids["heldout"] and len(ids["train"] | ids["heldout"]) == 200
