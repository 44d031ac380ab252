"""Record sources by name: procedural tasks, shipped benchmarks, files, public datasets.

open_dataset resolves one spec; open_sources turns a run's config.data into its
(train, held-out) pair.
"""

from amrsd.data import benchmarks, bfcl, files, hub, procedural


def open_dataset(spec: str, *, split: str = "train", seed: int = 0, size: int = 100_000,
                 skip_bad_rows: bool = False, format: str | None = None,
                 fields: dict | None = None, **task_options):
  """A source by name or path: a procedural task name (procedural.TASKS, with its
  options and split), "bfcl:<category>[,<category>...]" (BFCL's single-turn categories,
  split train | heldout | all), "bfcl_mt:<category>[,...]" (BFCL's multi-turn episodes
  for the bfcl_multi_turn environment: base, miss_func, miss_param, long_context; same
  splits), a shipped evaluation set (benchmarks.BENCHMARKS, e.g. "aime24"), or a
  .jsonl/.jsonl.gz/.parquet file (format guessed from its name, fields: column renames).
  For benchmarks and files, split is ignored: a held-out file is named by its own path.
  """
  if spec in procedural.TASKS:
    return procedural.ProceduralSource(spec, split=split, seed=seed, size=size, **task_options)
  if task_options:
    raise ValueError(f"{spec}: only procedural tasks take task options, got {sorted(task_options)}")
  if spec.startswith("bfcl:"):
    return bfcl.BfclSource(spec.removeprefix("bfcl:").split(","), split=split)
  if spec.startswith("bfcl_mt:"):
    return bfcl.BfclSource(spec.removeprefix("bfcl_mt:").split(","), split=split,
                           multi_turn=True)
  if spec in benchmarks.BENCHMARKS:
    return benchmarks.benchmark_source(spec)
  if spec.endswith(files.FILE_SUFFIXES):
    return files.FileSource(spec, format=files.field_map(format, spec, fields),
                            skip_bad_rows=skip_bad_rows)
  raise ValueError(f"unknown dataset {spec!r}: use a procedural task "
                   f"({', '.join(procedural.TASKS)}), bfcl:<categories>, bfcl_mt:<categories>, "
                   f"a shipped benchmark ({', '.join(benchmarks.BENCHMARKS)}) or a "
                   f"{'/'.join(files.FILE_SUFFIXES)} path; public datasets by name go through "
                   "config.data.task='hub'")


def open_sources(d, *, seed: int):
  """(train source, held-out source) for a run's config.data `d` (see amrsd/config.py).

  task "jsonl": files at d.train_path and d.eval_path; "hub": splits d.hub_train_split
  and d.hub_eval_split of d.hub_name; otherwise a procedural task's train and held-out
  splits. With "jsonl" or "hub", a d.eval_path may also name a shipped benchmark.
  """
  mapping = dict(format=d.dataset or None, fields=dict(d.fields), skip_bad_rows=d.skip_bad_rows)
  if d.task == "jsonl":
    for field in ("train_path", "eval_path"):
      if not d[field]:
        raise ValueError(f"config.data.task='jsonl' needs config.data.{field}")
    return open_dataset(d.train_path, **mapping), open_dataset(d.eval_path, **mapping)
  if d.task == "hub":
    if not d.hub_name:
      raise ValueError("config.data.task='hub' needs config.data.hub_name (e.g. openai/gsm8k)")
    by_name = dict(name=d.hub_name, config=d.hub_config or None, **mapping)
    train = hub.open_hub_dataset(split=d.hub_train_split, **by_name)
    if d.eval_path:
      return train, open_dataset(d.eval_path, **mapping)
    return train, hub.open_hub_dataset(split=d.hub_eval_split, **by_name)
  options = dict(d.task_args)
  return (open_dataset(d.task, split="train", seed=seed, **options),
          open_dataset(d.task, split="heldout", seed=seed, **options))
