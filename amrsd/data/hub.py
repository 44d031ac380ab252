"""Datasets by public name (or local dataset folder) through the `datasets` library.

  open_hub_dataset("openai/gsm8k", config="main", split="train")
  open_hub_dataset("HuggingFaceH4/MATH-500", split="test")

Rows are mapped onto amrsd's records exactly as file rows are (files.FieldMap), so a
malformed row is named by dataset, split and row number. `datasets` is an optional
dependency (the `hub` extra): it is imported only here, when a dataset is opened by name.
"""

from amrsd.data import files


def open_hub_dataset(name: str, *, config: str | None = None, split: str = "train",
                     format: str | files.FieldMap | None = None, fields: dict | None = None,
                     skip_bad_rows: bool = False) -> files.RecordSource:
  """All records of one split of a dataset that `datasets.load_dataset` finds by name
  (a Hugging Face Hub id, downloaded once into its cache) or by local folder.

  config: the dataset's configuration ("main" for openai/gsm8k), None for its default.
  format: a files.FORMATS key or FieldMap (default: guessed from the name's last part,
  so ".../gsm8k" maps GSM8K columns and ".../MATH-500" the MATH ones). fields: column
  renames on top of the format ({"problem": "question"}).
  """
  try:
    import datasets
  except ImportError:
    raise ImportError(f"opening dataset {name!r} by name needs the `datasets` package: "
                      "pip install 'amrsd[hub]' (or give a .jsonl/.parquet path)") from None
  label = f"{name}[{config + ':' if config else ''}{split}]"
  try:
    table = datasets.load_dataset(name, config, split=split)
  except ValueError as e:
    # An unknown split or config: datasets' message lists the valid ones.
    raise ValueError(f"dataset {label}: {e}") from None
  rows = ((f"row {number}", row) for number, row in enumerate(table, start=1))
  return files.RecordSource(label, rows, files.field_map(format, name.rstrip("/"), fields),
                            skip_bad_rows=skip_bad_rows)
