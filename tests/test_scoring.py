"""Benchmark resolution: a named set brings its verifier, a file is graded like the run."""

import pytest

from amrsd.scoring import BENCHMARKS, MATH_TEMPLATE, resolve_benchmark


def test_named_benchmark_brings_its_own_verifier_and_template(tmp_path):
  (tmp_path / BENCHMARKS["gsm8k"][0]).write_text("{}\n")
  path, verifier, template = resolve_benchmark("gsm8k", str(tmp_path), verifier="arithmetic",
                                               template="{problem} Number only.")
  assert path == str(tmp_path / "gsm8k_test.jsonl")
  assert (verifier, template) == ("gsm8k", MATH_TEMPLATE)


def test_a_file_is_graded_with_the_runs_verifier_and_template(tmp_path):
  file = tmp_path / "sums.jsonl"
  file.write_text("{}\n")
  assert resolve_benchmark(str(file), "unused", verifier="arithmetic", template="{problem}?") \
      == (str(file), "arithmetic", "{problem}?")


def test_unknown_names_and_missing_files_are_refused(tmp_path):
  with pytest.raises(ValueError, match="unknown benchmark 'gsm9k'; known: aime24"):
    resolve_benchmark("gsm9k", str(tmp_path), verifier="math", template="{problem}")
  with pytest.raises(FileNotFoundError, match="benchmark 'math500'.*math500.jsonl not found"):
    resolve_benchmark("math500", str(tmp_path), verifier="math", template="{problem}")
