"""Benchmark resolution: a shipped set brings its verifier, a file is graded like the run."""

import json

import pytest

from amrsd.data.benchmarks import MATH_TEMPLATE
from amrsd.scoring import resolve_benchmark


def test_shipped_set_brings_its_own_verifier_and_template():
  records, verifier, template = resolve_benchmark("gsm8k", None, verifier="arithmetic",
                                                  template="{problem} Number only.")
  assert (verifier, template) == ("gsm8k", MATH_TEMPLATE)
  assert len(records) == 1319 and records[0]["answer"] == "18"


def test_multiturn_episodes_are_named_by_category():
  records, verifier, template = resolve_benchmark("bfcl_mt:miss_param", verifier="math",
                                                  template="{problem} Answer.")
  assert len(records) == 200 and verifier == "bfcl_multi_turn" and template == "{problem}"
  assert all(r["env"] == "bfcl_multi_turn" for r in records)


def test_a_file_is_graded_with_the_runs_verifier_template_and_fields(tmp_path):
  (tmp_path / "sums.jsonl").write_text(json.dumps({"question": "2+2", "answer": "... #### 4"}) + "\n")
  records, verifier, template = resolve_benchmark("sums.jsonl", str(tmp_path),
                                                  verifier="arithmetic", template="{problem}?",
                                                  dataset="gsm8k")
  assert (verifier, template) == ("arithmetic", "{problem}?")
  assert (records[0]["problem"], records[0]["answer"]) == ("2+2", "4")


def test_unknown_names_and_missing_files_are_refused(tmp_path):
  with pytest.raises(ValueError, match="unknown benchmark 'gsm9k'; the shipped sets are aime24"):
    resolve_benchmark("gsm9k", str(tmp_path), verifier="math", template="{problem}")
  with pytest.raises(FileNotFoundError, match="benchmark file .*missing.jsonl not found"):
    resolve_benchmark("missing.jsonl", str(tmp_path), verifier="math", template="{problem}")
