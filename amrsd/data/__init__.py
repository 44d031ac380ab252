"""Data: file, public-dataset and procedural sources of records, the evaluation sets
shipped with amrsd, and the grain prompt pipeline.

Every record is {"problem", "answer", "solution" (or None), "task" (the verifier name),
...}; see files.FORMATS for the field mapping of each file dataset.
"""

from amrsd.data.arithmetic import LEVELS as ARITHMETIC_LEVELS, ArithmeticLevel
from amrsd.data.benchmarks import BENCHMARKS, Benchmark, benchmark_source, load_benchmark
from amrsd.data.files import (FILE_SUFFIXES, FORMATS, DataError, FieldMap, FileSource,
                              RecordSource, field_map, guess_format)
from amrsd.data.hub import open_hub_dataset
from amrsd.data.pipeline import PromptPipeline
from amrsd.data.procedural import REASONING_GYM_TASKS, TASKS, ProceduralSource, split_of
from amrsd.data.sources import open_dataset, open_sources

__all__ = ["ARITHMETIC_LEVELS", "ArithmeticLevel", "BENCHMARKS", "Benchmark", "benchmark_source",
           "load_benchmark", "FILE_SUFFIXES", "FORMATS", "DataError", "FieldMap", "FileSource",
           "RecordSource", "field_map", "guess_format", "open_hub_dataset", "PromptPipeline", "REASONING_GYM_TASKS",
           "TASKS", "ProceduralSource", "split_of", "open_dataset", "open_sources"]
