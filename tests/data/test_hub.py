"""Datasets by name through the real `datasets` library, offline: a local folder laid out
like the Hub repository openai/gsm8k (README configs, Parquet shards per split)."""

import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from amrsd import config as config_lib
from amrsd import data

README = """---
configs:
- config_name: main
  data_files:
  - split: train
    path: main/train-*
  - split: test
    path: main/test-*
---
"""


@pytest.fixture
def gsm8k_folder(tmp_path, monkeypatch):
  """tmp/gsm8k: config "main" with 3 train and 2 test rows; datasets' cache under tmp."""
  monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
  monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
  folder = tmp_path / "gsm8k"
  (folder / "main").mkdir(parents=True)
  (folder / "README.md").write_text(README)
  splits = {"train": [("One plus one?", "1+1=<<1+1=2>>2\n#### 2"), ("Two and two?", "#### 4"),
                      ("Three less one?", "3-1=2\n#### 2")],
            "test": [("Five and five?", "#### 10"), ("Six less two?", "#### 4")]}
  for split, rows in splits.items():
    questions, answers = zip(*rows)
    pq.write_table(pa.table({"question": list(questions), "answer": list(answers)}),
                   folder / "main" / f"{split}-00000-of-00001.parquet")
  return folder


def test_a_split_by_name_maps_gsm8k_columns(gsm8k_folder):
  source = data.open_hub_dataset(str(gsm8k_folder), config="main", split="train")
  assert len(source) == 3
  assert source[0] == {"problem": "One plus one?", "answer": "2", "solution": "1+1=2",
                       "task": "gsm8k"}
  test = data.open_hub_dataset(str(gsm8k_folder), config="main", split="test")
  assert [r["answer"] for r in test] == ["10", "4"]


def test_a_bad_row_is_named_by_dataset_split_and_row(gsm8k_folder):
  pq.write_table(pa.table({"question": ["ok?", "bad?"], "answer": ["#### 1", "no number"]}),
                 gsm8k_folder / "main" / "train-00000-of-00001.parquet")
  with pytest.raises(data.DataError, match=r"gsm8k\[main:train\]:row 2: field 'answer': no '####"):
    data.open_hub_dataset(str(gsm8k_folder), config="main", split="train")
  source = data.open_hub_dataset(str(gsm8k_folder), config="main", split="train",
                                 skip_bad_rows=True)
  assert len(source) == 1 and [where for where, _ in source.skipped] == ["row 2"]


def test_an_unknown_split_says_which_exist(gsm8k_folder):
  with pytest.raises(ValueError, match=r"gsm8k\[main:validation\]: .*train.*test"):
    data.open_hub_dataset(str(gsm8k_folder), config="main", split="validation")


def test_the_config_opens_train_and_heldout_through_the_hub_path(gsm8k_folder, tmp_path):
  c = config_lib.default_config().data
  c.task, c.hub_name, c.hub_config = "hub", str(gsm8k_folder), "main"
  train, heldout = data.open_sources(c, seed=0)
  assert (len(train), len(heldout)) == (3, 2) and heldout[0]["problem"] == "Five and five?"
  c.eval_path = "aime24"  # a shipped set as the held-out source
  assert len(data.open_sources(c, seed=0)[1]) == 30
  # Other column names, renamed in the config.
  (tmp_path / "mine").mkdir()
  (tmp_path / "mine" / "train.jsonl").write_text(json.dumps({"q": "1+2?", "gold": "3"}) + "\n")
  c.hub_name, c.hub_config, c.eval_path, c.dataset = str(tmp_path / "mine"), "", "amc23", "math"
  c.fields.problem, c.fields.answer = "q", "gold"
  train, heldout = data.open_sources(c, seed=0)
  assert train[0] == {"problem": "1+2?", "answer": "3", "solution": None, "task": "math"}
  c.hub_name = ""
  with pytest.raises(ValueError, match="needs config.data.hub_name"):
    data.open_sources(c, seed=0)
