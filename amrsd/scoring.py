"""Per-problem scoring on held-out sets, shared by the trainer, evaluate and compare.

`score_records` samples answers and grades them: the raw [problems, samples] matrix the
comparison's confidence intervals resample. `evaluate_records` reduces it to avg@k and
pass@k. `BENCHMARKS` names the public benchmark files; `resolve_benchmark` turns a name
or a .jsonl path into (path, verifier, prompt template) without reading the file.
"""

import os

import numpy as np

from amrsd import distributed, prompts, rewards

MATH_TEMPLATE = "{problem}\n\nPut your final answer in \\boxed{{}}."
# Benchmark name -> (file name, verifier, prompt template).
BENCHMARKS = {
    "aime24": ("aime24.jsonl", "math", MATH_TEMPLATE),
    "aime25": ("aime25.jsonl", "math", MATH_TEMPLATE),
    "amc23": ("amc23.jsonl", "math", MATH_TEMPLATE),
    "hmmt25_feb": ("hmmt25_feb.jsonl", "math", MATH_TEMPLATE),
    "hmmt25_nov": ("hmmt25_nov.jsonl", "math", MATH_TEMPLATE),
    "math500": ("math500.jsonl", "math", MATH_TEMPLATE),
    "gsm8k": ("gsm8k_test.jsonl", "gsm8k", MATH_TEMPLATE),
    # Rows carry their own system prompt (the answer format); the user message is as is.
    **{f"sciknoweval_{s}": (f"sciknoweval/{s}_test.jsonl", "mcq", "{problem}")
       for s in ("biology", "chemistry", "material", "physics")},
    "tooluse": ("tooluse_test.jsonl", "tooluse", "{problem}"),
}


def resolve_benchmark(name, data_dir, *, verifier, template):
  """(path, verifier, template) of a benchmark name or a .jsonl path.

  A named benchmark brings its own verifier and template; a file is graded like the run
  it evaluates (the run's `verifier` and `template`). Raises FileNotFoundError or
  ValueError naming the benchmark before anything is loaded.
  """
  if name in BENCHMARKS:
    file, verifier, template = BENCHMARKS[name]
    path = os.path.join(data_dir, file)
  elif name.endswith(".jsonl"):
    path = name
  else:
    raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)} or a "
                     ".jsonl path")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"benchmark {name!r}: {path} not found (named benchmarks are read "
                            "from the data folder; the public sets are openai/gsm8k, "
                            "HuggingFaceH4/MATH-500 and the AIME/AMC/HMMT problem sets)")
  return path, verifier, template


def score_records(sampler, records, verifier, *, template, samples, max_new_tokens, temperature,
                  seed, batch_size=64) -> np.ndarray:
  """Per-problem correctness: bool [len(records), samples] (problem i, sample j).

  records: dicts with "problem" and "answer" (and "system", used when present). verifier:
  a name for amrsd.rewards.verify_batch. With several processes, records are this
  process's share.
  """
  # With several processes each scores its own records; generate is a collective, so
  # every process runs the same number of chunks (some possibly empty).
  chunks = int(distributed.gather(-(-len(records) // batch_size)).max())
  if not chunks:
    raise ValueError("score_records: no records to evaluate")
  rows = []
  for start in range(0, chunks * batch_size, batch_size):
    chunk = records[start:start + batch_size]
    messages = [prompts.chat_messages(r, template) for r in chunk]
    result = sampler.generate(messages, n=samples, max_new_tokens=max_new_tokens,
                              temperature=temperature, seed=seed)
    verdicts = rewards.verify_batch(verifier, result.texts,
                                    [chunk[i // samples] for i in range(len(result.texts))])
    rows.append(np.array([v.reward >= 0.5 for v in verdicts], bool).reshape(len(chunk), samples))
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
