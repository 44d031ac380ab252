"""File sources: field mapping, malformed rows (error or skip-and-count), Parquet."""

import gzip
import json

import pytest

from amrsd import data
from tests.conftest import FIXTURES


def write_jsonl(path, rows):
  path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
  return str(path)


def test_gsm8k_rows_map_to_problem_answer_solution(tmp_path):
  path = write_jsonl(tmp_path / "gsm8k_tiny.jsonl", [
      {"question": "Two and three?", "answer": "2+3=<<2+3=5>>5 apples\n#### 5"}])
  record = data.FileSource(path)[0]
  assert record == {"problem": "Two and three?", "answer": "5", "solution": "2+3=5 apples",
                    "task": "gsm8k"}


def test_gzipped_jsonl_reads_like_plain(tmp_path):
  rows = [{"question": "Two and three?", "answer": "#### 5"}, {"question": "q", "answer": "#### 1"}]
  plain = write_jsonl(tmp_path / "gsm8k_a.jsonl", rows)
  packed = tmp_path / "gsm8k_a.jsonl.gz"
  with gzip.open(packed, "wt") as f:
    f.write(open(plain).read())
  assert data.open_dataset(str(packed)).records == data.FileSource(plain).records


def test_field_renames_apply_on_top_of_the_format(tmp_path):
  path = write_jsonl(tmp_path / "mine.jsonl", [{"q": "1+1?", "gold": 2, "task": "math"}])
  record = data.open_dataset(path, fields={"problem": "q", "answer": "gold", "solution": ""})[0]
  assert record == {"problem": "1+1?", "answer": "2", "solution": None, "task": "math"}
  with pytest.raises(ValueError, match=r"field overrides \['task'\]: only problem, answer"):
    data.open_dataset(path, fields={"task": "x"})


@pytest.mark.parametrize("bad_row, field, reason", [
    ('{"question": "q", "answer": "no final number"}', "answer", "no '#### <number>'"),
    ('{"answer": "#### 3"}', "question", "missing"),
    ('{"question": "", "answer": "#### 3"}', "question", "empty"),
    ('{"question": ["q"], "answer": "#### 3"}', "question", "expected text, got list"),
    ('{"question": "q", "answer": "#### 3"', "<row>", "not valid JSON"),
    ('[1, 2]', "<row>", "expected a JSON object"),
])
def test_malformed_row_error_names_file_line_and_field(tmp_path, bad_row, field, reason):
  good = {"question": "q", "answer": "#### 1"}
  path = write_jsonl(tmp_path / "gsm8k_bad.jsonl", [good, good, bad_row, good])
  with pytest.raises(data.DataError) as error:
    data.FileSource(path)
  message = str(error.value)
  assert message.startswith(f"{path}:3: field {field!r}: ")
  assert reason in message and "skip_bad_rows=True" in message


def test_skip_bad_rows_skips_and_counts(tmp_path):
  good = {"question": "q", "answer": "#### 1"}
  path = write_jsonl(tmp_path / "gsm8k_bad.jsonl", [good, "{oops", good, {"question": "q"}, good])
  source = data.FileSource(path, skip_bad_rows=True)
  assert len(source) == 3
  assert [line for line, _ in source.skipped] == [2, 4]


def test_non_utf8_bytes_name_file_and_line_or_are_skipped(tmp_path):
  path = tmp_path / "gsm8k_latin1.jsonl"
  good = json.dumps({"question": "q", "answer": "#### 1"}).encode()
  path.write_bytes(good + b"\n" + '{"question": "caf\xe9", "answer": "#### 2"}'.encode("latin-1")
                   + b"\n" + good + b"\n")
  with pytest.raises(data.DataError, match=rf"{path}:2: .*not UTF-8 \(byte 0xe9 at column 18\)"):
    data.FileSource(str(path))
  source = data.FileSource(str(path), skip_bad_rows=True)
  assert len(source) == 2 and [line for line, _ in source.skipped] == [2]
  assert source.lines == [1, 3]


def test_generic_format_takes_the_task_from_each_row(tmp_path):
  path = write_jsonl(tmp_path / "mine.jsonl", [
      {"problem": "Pick", "answer": "B", "task": "mcq"}, {"problem": "Sum", "answer": 3}])
  with pytest.raises(data.DataError, match=r"mine.jsonl:2: field 'task': missing"):
    data.FileSource(path)
  assert data.FileSource(path, format="math")[1]["answer"] == "3"


def test_a_rows_id_is_kept_in_every_format(tmp_path):
  path = write_jsonl(tmp_path / "gsm8k_ids.jsonl", [
      {"id": "q-7", "question": "One and one?", "answer": "#### 2"},
      {"question": "Two and two?", "answer": "#### 4"}])
  first, second = data.FileSource(path)
  assert first["id"] == "q-7" and "id" not in second


def test_parquet_source_reads_rows_and_names_bad_ones(tmp_path):
  import pyarrow as pa
  import pyarrow.parquet as pq
  path = str(tmp_path / "math_tiny.parquet")
  pq.write_table(pa.table({"problem": ["1+1?", "2+2?", None], "answer": ["2", "4", "6"],
                           "solution": ["1+1=2", None, None]}), path)
  with pytest.raises(data.DataError, match=r"math_tiny.parquet:row 3: field 'problem': missing"):
    data.FileSource(path)
  source = data.FileSource(path, skip_bad_rows=True)
  assert [r["answer"] for r in source] == ["2", "4"] and source[0]["solution"] == "1+1=2"


def test_unknown_format_and_missing_file_are_clear(tmp_path):
  path = write_jsonl(tmp_path / "x.jsonl", [{"problem": "p", "answer": "1"}])
  with pytest.raises(ValueError, match="unknown dataset format 'csv'; valid: generic, gsm8k, math"):
    data.FileSource(path, format="csv")
  with pytest.raises(FileNotFoundError, match="does not exist"):
    data.FileSource(str(tmp_path / "absent.jsonl"))
  with pytest.raises(ValueError, match="unknown dataset 'gsm9k'.*shipped benchmark.*aime24"):
    data.open_dataset("gsm9k")


def test_sciknoweval_and_tooluse_files_keep_prompt_answer_and_system():
  science = data.FileSource(str(FIXTURES / "domains" / "sciknoweval_test.jsonl"),
                            format="sciknoweval")
  row = json.loads(open(science.path).readline())
  assert science[0]["problem"] == row["prompt"].strip() and science[0]["answer"] == row["answer"]
  assert science[0]["system"] == row["system"] and science[0]["task"] == "mcq"
  tools = data.FileSource(str(FIXTURES / "domains" / "tooluse_test.jsonl"))  # guessed
  assert tools[0]["task"] == "tooluse" and json.loads(tools[0]["answer"])[0]["Action"]


@pytest.mark.parametrize("name, fmt", [("chemistry_train.jsonl", "sciknoweval"),
                                       ("physics_test.jsonl", "sciknoweval"),
                                       ("tooluse_test.jsonl", "tooluse"),
                                       ("chemistry.jsonl", "generic")])
def test_format_is_guessed_from_the_file_name(name, fmt):
  assert data.guess_format(f"/some/dir/{name}") == fmt
