"""Data: file and procedural sources of records, and the grain prompt pipeline.

Every record is {"problem", "answer", "solution" (or None), "task" (the verifier name),
...}; see files.FORMATS for the field mapping of each file dataset.
"""

from amrsd.data.arithmetic import LEVELS as ARITHMETIC_LEVELS, ArithmeticLevel
from amrsd.data.files import FORMATS, DataError, FieldMap, FileSource, guess_format
from amrsd.data.pipeline import PromptPipeline, open_dataset
from amrsd.data.procedural import REASONING_GYM_TASKS, TASKS, ProceduralSource, split_of

__all__ = ["ARITHMETIC_LEVELS", "ArithmeticLevel", "FORMATS", "DataError", "FieldMap",
           "FileSource", "guess_format", "PromptPipeline", "open_dataset",
           "REASONING_GYM_TASKS", "TASKS", "ProceduralSource", "split_of"]
