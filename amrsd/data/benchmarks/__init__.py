"""The evaluation sets shipped inside amrsd, by name (origins and licences: README.md here).

  load_benchmark("aime24") -> [{"problem", "answer", "solution", "task", ...}, ...]

Each set is a gzipped JSON Lines file next to this module, mapped onto amrsd's record
fields like any other file (amrsd.data.files): "task" is the verifier that grades it,
and rows keep what their verifier or prompt needs ("system" for the multiple-choice
and tool-use sets, "subject"/"level" for MATH-500).
"""

import dataclasses
import importlib.resources

from amrsd.data import files

# User message of the math sets: the verifier reads the last \boxed{...}.
MATH_TEMPLATE = "{problem}\n\nPut your final answer in \\boxed{{}}."
# The SciKnowEval and tool-use rows carry their whole instruction (plus "system").
AS_IS_TEMPLATE = "{problem}"


@dataclasses.dataclass(frozen=True)
class Benchmark:
  """file: the data file in this package. fields: how its rows become records (its
  task is the verifier name). template: the user message, str.format over a record."""
  file: str
  fields: files.FieldMap
  template: str = MATH_TEMPLATE

  @property
  def verifier(self) -> str:
    return self.fields.task


_COMPETITION = files.FieldMap(solution=None)
_SCIKNOWEVAL = files.FieldMap(problem="prompt", solution=None, task="mcq",
                              extra=("system", "kind", "idx"))
BENCHMARKS = {
    "aime24": Benchmark("aime24.jsonl.gz", _COMPETITION),
    "aime25": Benchmark("aime25.jsonl.gz", _COMPETITION),
    "amc23": Benchmark("amc23.jsonl.gz", _COMPETITION),
    "hmmt25_feb": Benchmark("hmmt25_feb.jsonl.gz", _COMPETITION),
    "hmmt25_nov": Benchmark("hmmt25_nov.jsonl.gz", _COMPETITION),
    "math500": Benchmark("math500.jsonl.gz", files.FORMATS["math"]),
    "gsm8k": Benchmark("gsm8k_test.jsonl.gz", files.FORMATS["gsm8k"]),
    **{f"sciknoweval_{field}": Benchmark(f"sciknoweval_{field}_test.jsonl.gz", _SCIKNOWEVAL,
                                         AS_IS_TEMPLATE)
       for field in ("biology", "chemistry", "material", "physics")},
    "tooluse": Benchmark("tooluse_test.jsonl.gz", dataclasses.replace(_SCIKNOWEVAL, task="tooluse"),
                         AS_IS_TEMPLATE),
}


def benchmark_source(name: str) -> files.FileSource:
  """The shipped set `name` as a record source (len + getitem), e.g. for the pipeline."""
  if name not in BENCHMARKS:
    raise ValueError(f"unknown benchmark {name!r}; the sets shipped with amrsd are: "
                     f"{', '.join(BENCHMARKS)}")
  resource = importlib.resources.files(__package__) / BENCHMARKS[name].file
  with importlib.resources.as_file(resource) as path:
    return files.FileSource(path, format=BENCHMARKS[name].fields)


def load_benchmark(name: str) -> list[dict]:
  """Every row of the shipped set `name` (one of BENCHMARKS) as a record dict with its
  "answer"; a fresh list of fresh dicts each call."""
  return [dict(record) for record in benchmark_source(name).records]
