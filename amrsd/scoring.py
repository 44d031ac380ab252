"""Per-problem scoring on held-out sets, shared by the trainer, evaluate and compare.

`score_records` samples answers and grades them: the raw [problems, samples] matrix the
comparison's confidence intervals resample. Records of an environment (an "env" field,
e.g. BFCL's multi-turn episodes) are played as episodes and graded by their result.
`evaluate_records` reduces it to avg@k and pass@k. `resolve_benchmark` turns a shipped
set's name or a file path into (records, verifier, prompt template).
"""

import dataclasses
import os

import jax
import numpy as np

from amrsd import data, distributed, prompts, rewards
from amrsd.envs import rollout


@dataclasses.dataclass(frozen=True)
class EpisodeLimits:
  """How environment records are played (the run's rollout.max_turns and
  rollout.max_tokens_per_turn; max_new_tokens is the whole episode's budget)."""
  max_turns: int = 8
  max_tokens_per_turn: int = 128

def resolve_benchmark(name, data_dir=None, *, verifier, template, dataset=""):
  """(records, verifier, template) of a shipped set's name, "bfcl:<category>" (every row of
  BFCL's category, from the bfcl-eval package) or a data file's path.

  A shipped set or BFCL category brings its own verifier and template; a file
  (relative paths under data_dir) is graded like the run it evaluates: the run's
  `verifier`, `template` and field mapping `dataset` (a FORMATS key, "" = guessed).
  Raises FileNotFoundError or ValueError naming the benchmark.
  """
  if name in data.BENCHMARKS:
    spec = data.BENCHMARKS[name]
    return data.load_benchmark(name), spec.verifier, spec.template
  if name.startswith("bfcl:"):  # ships inside bfcl-eval: every row, BFCL's own prompt
    return list(data.open_dataset(name, split="all")), "bfcl", "{problem}"
  if name.startswith("bfcl_mt:"):  # episodes, scored by the environment's result
    return list(data.open_dataset(name, split="all")), "bfcl_multi_turn", "{problem}"
  if not name.endswith(data.FILE_SUFFIXES):
    raise ValueError(f"unknown benchmark {name!r}; the shipped sets are "
                     f"{', '.join(data.BENCHMARKS)}, BFCL's are bfcl:<category> and "
                     f"bfcl_mt:<category> (multi-turn episodes); files end in "
                     f"{'/'.join(data.FILE_SUFFIXES)}")
  path = os.path.join(data_dir or "", name)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"benchmark file {path} not found (relative paths are read under "
                            "--data_dir)")
  return list(data.FileSource(path, format=dataset or None)), verifier, template


def score_records(sampler, records, verifier, *, template, samples, max_new_tokens, temperature,
                  seed, batch_size=64, episodes=EpisodeLimits(), answers=None,
                  progress="") -> np.ndarray:
  """Per-problem correctness: bool [len(records), samples] (problem i, sample j).

  records: dicts with "problem" and "answer" (and "system", used when present). verifier:
  a name for amrsd.rewards.verify_batch. With several processes, records are this
  process's share. Records with an "env" are episodes of that environment, played by
  amrsd.envs.rollout.play within `episodes`' limits and max_new_tokens cache slots (one
  process only), correct when the environment's reward is >= 0.5. answers: a list to
  append one dict per answer to (problem index i, sample j, completion text or the
  episode's transcript, reward, feedback), problem-major. progress: a label for a
  progress bar over the problems on stderr ("" = none).
  """
  if records and records[0].get("env"):
    return _score_episodes(sampler, records, samples=samples, max_new_tokens=max_new_tokens,
                           temperature=temperature, seed=seed, batch_size=batch_size,
                           limits=episodes, answers=answers, progress=progress)
  # With several processes each scores its own records; generate is a collective, so
  # every process runs the same number of chunks (some possibly empty).
  chunks = int(distributed.gather(-(-len(records) // batch_size)).max())
  if not chunks:
    raise ValueError("score_records: no records to evaluate")
  rows = []
  for start in _chunk_starts(chunks * batch_size, batch_size, len(records), progress):
    chunk = records[start:start + batch_size]
    messages = [prompts.chat_messages(r, template) for r in chunk]
    result = sampler.generate(messages, n=samples, max_new_tokens=max_new_tokens,
                              temperature=temperature, seed=seed)
    verdicts = rewards.verify_batch(verifier, result.texts,
                                    [chunk[i // samples] for i in range(len(result.texts))])
    _keep_answers(answers, start, samples, result.texts, verdicts)
    rows.append(np.array([v.reward >= 0.5 for v in verdicts], bool).reshape(len(chunk), samples))
  return np.concatenate(rows)


def _keep_answers(answers, start, samples, texts, verdicts):
  """Appends each answer of a chunk whose first problem is `start` to `answers` (a list)."""
  if answers is None:
    return
  for row, (text, verdict) in enumerate(zip(texts, verdicts)):
    answers.append({"index": start + row // samples, "sample": row % samples,
                    "completion": text, "reward": float(verdict.reward),
                    "feedback": verdict.feedback})


def _chunk_starts(stop, batch_size, problems, progress):
  """range(0, stop, batch_size), with a progress bar over `problems` when labelled."""
  if not progress or not distributed.is_primary():
    yield from range(0, stop, batch_size)
    return
  from tqdm import tqdm
  # leave=False: the bar clears when done (the trainer's own bar stays the only one).
  with tqdm(total=problems, desc=progress, unit="problem", dynamic_ncols=True,
            leave=False) as bar:
    for start in range(0, stop, batch_size):
      yield start
      bar.update(max(0, min(batch_size, problems - start)))


def _score_episodes(sampler, records, *, samples, max_new_tokens, temperature, seed,
                    batch_size, limits, answers, progress):
  if jax.process_count() > 1:
    raise ValueError("environment episodes are scored on one process (sampler sessions); "
                     "evaluate them from a single-host run")
  rows = []
  for start in _chunk_starts(len(records), batch_size, len(records), progress):
    chunk = records[start:start + batch_size]
    out = rollout.play_records(sampler, chunk, n=samples, max_turns=limits.max_turns,
                               max_tokens_per_turn=limits.max_tokens_per_turn,
                               max_tokens=max_new_tokens, temperature=temperature, seed=seed)
    _keep_answers(answers, start, samples, out.texts, out.verdicts)
    rows.append(np.array([v.reward >= 0.5 for v in out.verdicts], bool).reshape(-1, samples))
  return np.concatenate(rows)


def evaluate_records(sampler, records, verifier, **kwargs):
  """avg@k (mean accuracy over k samples per problem) and pass@k (any of k correct).

  Arguments as score_records. Returns {"avg@k": float, "pass@k": float, "count": int}
  with k = samples.
  """
  correct = score_records(sampler, records, verifier, **kwargs)
  k = correct.shape[1]
  # Sums over every process's records (just this one's in a single-process run).
  solved, passed, count = distributed.gather(
      [correct.mean(axis=1).sum(), correct.any(axis=1).sum(), len(correct)]).sum(axis=0)
  return {f"avg@{k}": float(solved / count), f"pass@{k}": float(passed / count),
          "count": int(count)}
