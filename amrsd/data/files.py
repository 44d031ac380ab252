"""File datasets (JSON Lines, plain or gzipped, Parquet) mapped onto amrsd's record fields.

Every record becomes {"problem", "answer", "solution" (or None), "task", ...extra}, and
keeps a row's "id" where it has one (`amrsd.evaluate --samples_out` names answers by it). Rows
are read and checked when the source is opened, so a malformed row fails before any
compilation, with file, line (Parquet: row) and field in the message; with
skip_bad_rows=True it is skipped and counted in `source.skipped` instead.
"""

import dataclasses
import gzip
import json
import os
import re


class DataError(ValueError):
  """A malformed input row: the message names the file, the line and the field."""


@dataclasses.dataclass(frozen=True)
class FieldMap:
  """How one dataset's columns become record fields.

  task: the verifier name stored in each record (a row's own "task" wins if task is None).
  gsm8k: the answer column is a GSM8K solution; the gold is the number after "#### " and
  the text before it (calculator marks <<...>> removed) becomes the solution.
  """
  problem: str = "problem"
  answer: str = "answer"
  solution: str | None = "solution"
  task: str | None = "math"
  gsm8k: bool = False
  extra: tuple[str, ...] = ()


FORMATS = {
    "gsm8k": FieldMap(problem="question", answer="answer", solution=None, task="gsm8k",
                      gsm8k=True),
    "math": FieldMap(extra=("subject", "level", "unique_id")),
    "generic": FieldMap(task=None, extra=("difficulty",)),
    # SciKnowEval as SDPO splits it: the per-row "system" prompt asks for <answer>X</answer>.
    "sciknoweval": FieldMap(problem="prompt", solution=None, task="mcq", extra=("system",)),
    "tooluse": FieldMap(problem="prompt", solution=None, task="tooluse", extra=("system",)),
}
# File-name prefixes of the public sets, and the format each one uses.
_FORMAT_BY_PREFIX = (("gsm8k", "gsm8k"), ("math", "math"), ("aime", "math"), ("amc", "math"),
                     ("hmmt", "math"), ("tooluse", "tooluse"),
                     *((f"{s}_", "sciknoweval") for s in ("biology", "chemistry", "material",
                                                         "physics", "sciknoweval")))
# File types FileSource reads (.gz: gzip-compressed JSON Lines).
FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".parquet")
_CALCULATOR_MARK = re.compile(r"<<[^>]*>>")


def guess_format(path: str) -> str:
  """The FORMATS key for a file name ("gsm8k_train.jsonl" -> "gsm8k"), else "generic"."""
  name = os.path.basename(path).lower()
  return next((fmt for prefix, fmt in _FORMAT_BY_PREFIX if name.startswith(prefix)), "generic")


class RecordSource:
  """Records mapped from rows of any origin (grain-compatible: len + getitem).

  name: the origin as error messages name it (a path, "openai/gsm8k[train]").
  rows: (where, row) pairs: where is a line number or "row N", row a decoded dict (or
  _Unreadable). fields: the FieldMap. skipped: [(where, reason)] of the rows left out
  with skip_bad_rows=True. lines: the where of each record, for messages.
  """

  def __init__(self, name: str, rows, fields: FieldMap, *, skip_bad_rows: bool = False):
    self.name = name
    self.fields = fields
    self.records: list[dict] = []
    self.lines: list[int | str] = []
    self.skipped: list[tuple[int | str, str]] = []
    for where, row in rows:
      try:
        self.records.append(_to_record(row, fields))
        self.lines.append(where)
      except _FieldError as e:
        message = f"{name}:{where}: field {e.field!r}: {e.what}"
        if not skip_bad_rows:
          raise DataError(message + " (fix the row, or set skip_bad_rows=True to skip and "
                          "count such rows)") from None
        self.skipped.append((where, message))
    if not self.records:
      raise DataError(f"{name}: no usable rows ({len(self.skipped)} skipped)")

  def __len__(self) -> int:
    return len(self.records)

  def __getitem__(self, index: int) -> dict:
    return self.records[index]

  def __repr__(self):
    return f"{type(self).__name__}({self.name!r}, rows={len(self)}, skipped={len(self.skipped)})"


class FileSource(RecordSource):
  """All records of one .jsonl, .jsonl.gz or .parquet file.

  format: a FORMATS key or a FieldMap (default: guessed from the file name).
  """

  def __init__(self, path: str, *, format: str | FieldMap | None = None,
               skip_bad_rows: bool = False):
    self.path = os.fspath(path)
    if not os.path.isfile(self.path):
      raise FileNotFoundError(f"dataset file {self.path!r} does not exist")
    super().__init__(self.path, _read_rows(self.path), field_map(format, self.path),
                     skip_bad_rows=skip_bad_rows)


def field_map(format: str | FieldMap | None, name: str, overrides: dict | None = None) -> FieldMap:
  """The FieldMap for a FORMATS key, a FieldMap, or None (guessed from name), with the
  columns in overrides ({"problem": "question", ...}; empty values ignored) replaced."""
  fmt = format if format is not None else guess_format(name)
  if isinstance(fmt, str):
    if fmt not in FORMATS:
      raise ValueError(f"unknown dataset format {fmt!r}; valid: {', '.join(sorted(FORMATS))}")
    fmt = FORMATS[fmt]
  overrides = {key: value for key, value in (overrides or {}).items() if value}
  unknown = set(overrides) - {"problem", "answer", "solution"}
  if unknown:
    raise ValueError(f"field overrides {sorted(unknown)}: only problem, answer and solution "
                     "columns can be renamed")
  return dataclasses.replace(fmt, **overrides)


class _FieldError(Exception):
  def __init__(self, field, what):
    super().__init__(field, what)
    self.field, self.what = field, what


def _read_rows(path):
  """Yields (line number, or "row N" for Parquet; the decoded row or an _Unreadable)."""
  if path.endswith(".parquet"):
    yield from _read_parquet(path)
  elif path.endswith(FILE_SUFFIXES):
    yield from _read_jsonl(path)
  else:
    raise ValueError(f"{path}: unsupported file type (use {', '.join(FILE_SUFFIXES)})")


def _read_jsonl(path):
  opener = gzip.open if path.endswith(".gz") else open
  # Bytes per line, decoded here: a non-UTF-8 byte is then one bad row (file and line
  # named, skip_bad_rows honoured), not an error from the file iterator.
  with opener(path, "rb") as f:
    for number, raw in enumerate(f, start=1):
      try:
        line = raw.decode("utf-8")
      except UnicodeDecodeError as e:
        yield number, _Unreadable(f"not UTF-8 (byte 0x{raw[e.start]:02x} at column "
                                  f"{e.start + 1})")
        continue
      if not line.strip():
        continue
      try:
        row = json.loads(line)
      except json.JSONDecodeError as e:
        row = _Unreadable(f"not valid JSON ({e.msg} at column {e.colno})")
      yield number, row


def _read_parquet(path):
  import pyarrow.parquet as pq  # only Parquet users need pyarrow
  for number, row in enumerate(pq.read_table(path).to_pylist(), start=1):
    yield f"row {number}", row


class _Unreadable:
  """A row that could not be decoded; mapping it raises with the decoder's reason."""

  def __init__(self, reason):
    self.reason = reason


def _to_record(row, fmt: FieldMap) -> dict:
  if isinstance(row, _Unreadable):
    raise _FieldError("<row>", row.reason)
  if not isinstance(row, dict):
    raise _FieldError("<row>", f"expected a JSON object, got {type(row).__name__}")
  problem = _text(row, fmt.problem)
  answer = _text(row, fmt.answer)
  solution = None
  if fmt.gsm8k:
    if "####" not in answer:
      raise _FieldError(fmt.answer, "no '#### <number>' final answer (GSM8K format)")
    work, _, answer = answer.rpartition("####")
    answer = answer.strip()
    if not answer:
      raise _FieldError(fmt.answer, "nothing after '####'")
    solution = _CALCULATOR_MARK.sub("", work).strip() or None
  elif fmt.solution and row.get(fmt.solution) is not None:
    solution = _text(row, fmt.solution)
  task = fmt.task if fmt.task is not None else row.get("task")
  if not isinstance(task, str) or not task:
    raise _FieldError("task", "missing: this format takes the verifier name from each row")
  record = {"problem": problem, "answer": answer, "solution": solution, "task": task}
  record.update({key: row[key] for key in ("id", *fmt.extra) if key in row})
  return record


def _text(row: dict, field: str) -> str:
  """A required text field; numbers are accepted and turned into text (answers often are)."""
  if field not in row or row[field] is None:
    raise _FieldError(field, "missing")
  value = row[field]
  if isinstance(value, bool) or not isinstance(value, (str, int, float)):
    raise _FieldError(field, f"expected text, got {type(value).__name__}")
  value = str(value).strip()
  if not value:
    raise _FieldError(field, "empty")
  return value
