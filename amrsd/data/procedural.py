"""Procedural task sources: records generated on demand, deterministic in (seed, index).

Train and held-out splits are disjoint by content: every problem text hashes into one
of 100 buckets, the first `heldout_percent` belong to the held-out split, and item i of
a split is the first candidate drawn from rng(seed, i, k), k = 0, 1, ..., that falls in
the split's buckets. So no held-out problem is ever trained on, whatever the seeds.
"""

import hashlib

import numpy as np

from amrsd.data import arithmetic

SPLITS = ("train", "heldout")
# reasoning-gym families with one numeric answer (scored by amrsd.rewards' verifiers).
REASONING_GYM_TASKS = ("chain_sum", "basic_arithmetic")
TASKS = (arithmetic.TASK,) + REASONING_GYM_TASKS
_MAX_DRAWS = 10_000


class ProceduralSource:
  """A grain-compatible source (len + getitem) of `size` generated records.

  task: "arithmetic" (options: levels=(1, 2, ...) drawn uniformly per item, or an
  explicit terms=(min, max), digits=(min, max), operators="+-*") or a reasoning-gym
  family in REASONING_GYM_TASKS (options: that family's config fields, e.g. min_terms).
  """

  def __init__(self, task: str, *, split: str = "train", seed: int = 0, size: int = 100_000,
               heldout_percent: int = 10, **options):
    if split not in SPLITS:
      raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    if not 0 < heldout_percent < 100:
      raise ValueError(f"heldout_percent must be in 1..99, got {heldout_percent}")
    if size < 1:
      raise ValueError(f"size must be >= 1, got {size}")
    self.task, self.split, self.seed, self.size = task, split, seed, size
    self.heldout_percent = heldout_percent
    self._draw = _generator(task, options)

  def __len__(self) -> int:
    return self.size

  def __getitem__(self, index: int) -> dict:
    if not 0 <= index < self.size:
      raise IndexError(f"{self.task} {self.split} index {index} out of range [0, {self.size})")
    for draw in range(_MAX_DRAWS):
      record = self._draw(np.random.default_rng([self.seed, index, draw]))
      if (split_of(record["problem"], self.heldout_percent) == self.split):
        return record
    raise RuntimeError(f"{self.task}: no {self.split} problem in {_MAX_DRAWS} draws; the "
                       "task's problem space is too small for this heldout_percent")

  def __repr__(self):
    return f"ProceduralSource({self.task!r}, split={self.split!r}, seed={self.seed}, size={self.size})"


def split_of(problem: str, heldout_percent: int) -> str:
  """The split a problem text belongs to (stable across processes and runs)."""
  bucket = int.from_bytes(hashlib.blake2b(problem.encode(), digest_size=8).digest(), "little")
  return "heldout" if bucket % 100 < heldout_percent else "train"


def _generator(task: str, options: dict):
  """draw(rng) -> record for the task; options are validated here, before any draw."""
  if task == arithmetic.TASK:
    return _arithmetic_generator(**options)
  if task in REASONING_GYM_TASKS:
    return _reasoning_gym_generator(task, options)
  raise ValueError(f"unknown procedural task {task!r}; valid: {', '.join(TASKS)}")


def _arithmetic_generator(levels=(1,), terms=None, digits=None, operators=None):
  if terms is not None or digits is not None or operators is not None:
    default = arithmetic.ArithmeticLevel()
    custom = arithmetic.ArithmeticLevel(tuple(terms or default.terms),
                                        tuple(digits or default.digits),
                                        operators or default.operators)
    choices = [(custom, "custom")]
  else:
    unknown = [level for level in levels if level not in arithmetic.LEVELS]
    if unknown or not levels:
      raise ValueError(f"unknown arithmetic levels {unknown or levels}; valid: "
                       f"{sorted(arithmetic.LEVELS)}")
    choices = [(arithmetic.LEVELS[level], level) for level in levels]

  def draw(rng):
    level, name = choices[int(rng.integers(len(choices)))]
    return arithmetic.make_problem(rng, level, name)
  return draw


def _reasoning_gym_generator(task: str, options: dict):
  import reasoning_gym  # ~1 s to import: only pipelines over its tasks pay it.
  # The dataset is lazy (item i is generated from seed + i), so its size costs nothing.
  dataset = reasoning_gym.create_dataset(task, seed=0, size=2**31 - 1, **options)

  def draw(rng):
    entry = dataset[int(rng.integers(2**31 - 1))]
    metadata = entry["metadata"]
    expression = metadata.get("expression")
    return {
        "problem": entry["question"],
        "answer": str(entry["answer"]),
        "solution": f"{expression} = {entry['answer']}" if expression else None,
        "task": task,
        "difficulty": {key: metadata[key] for key in ("num_terms", "num_digits") if key in metadata},
        "metadata": metadata,
    }
  return draw
