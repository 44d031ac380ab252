"""Evaluation: avg@k and pass@k on held-out problems.

  python -m amrsd.evaluate --config=configs/<recipe>.py --checkpoint=<workdir or step dir> \
      --benchmarks=aime24,aime25,amc23,hmmt25_feb,math500,gsm8k --samples=4

Benchmarks are the sets shipped with amrsd, by name (amrsd.data.BENCHMARKS), or JSONL /
Parquet files by path (relative ones under --data_dir when given). Writes eval.json (per
benchmark avg@k, pass@k, count) and prints a table.
"""

import json
import os

import numpy as np
from absl import app, flags
from ml_collections import config_flags

from amrsd import distributed, prompts
from amrsd.data.benchmarks import BENCHMARKS, MATH_TEMPLATE, chat_messages


def score_records(sampler, records, verifier, *, template, samples, max_new_tokens, temperature,
                  seed, batch_size=64) -> np.ndarray:
  """Per-problem correctness: bool [len(records), samples] (problem i, sample j).

  records: dicts with "problem" and "answer" (and an optional "system" message).
  verifier: a name for amrsd.rewards.verify_batch. With several processes, records are
  this process's share.
  """
  from amrsd import rewards
  # With several processes each scores its own records; generate is a collective, so
  # every process runs the same number of chunks (some possibly empty).
  chunks = int(distributed.gather(-(-len(records) // batch_size)).max())
  if not chunks:
    raise ValueError("score_records: no records to evaluate")
  rows = []
  for start in range(0, chunks * batch_size, batch_size):
    chunk = records[start:start + batch_size]
    messages = [chat_messages(template, r) for r in chunk]
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


def load_policy(config, checkpoint):
  """(model, tokenizer): the config's model, with a run's latest trained weights when
  checkpoint is a workdir."""
  from flax import nnx

  from amrsd import models
  if checkpoint and os.path.isfile(os.path.join(checkpoint, "config.json")):
    return models.load(checkpoint)
  from amrsd.trainer import Trainer
  if not checkpoint:
    return models.load(config.model.path or models.default_model_path())
  config = config.copy_and_resolve_references()
  config.workdir = checkpoint
  trainer = Trainer(config)
  if not trainer.restore_latest():
    raise FileNotFoundError(f"{checkpoint}: no checkpoint found under checkpoints/")
  nnx.update(trainer.model, trainer.params)
  return trainer.model, trainer.tokenizer


def main(argv):
  del argv
  from amrsd import data
  from amrsd.sampling import Sampler
  config = _CONFIG.value
  model, tokenizer = load_policy(config, _CHECKPOINT.value)
  sampler = Sampler(model, tokenizer)
  results = {}
  for name in _BENCHMARKS.value:
    if name in BENCHMARKS:
      records = data.load_benchmark(name)
      verifier, template = BENCHMARKS[name].verifier, BENCHMARKS[name].template
    elif name.endswith(data.files.FILE_SUFFIXES):
      path = os.path.join(_DATA_DIR.value or "", name)
      if not os.path.exists(path):
        raise app.UsageError(f"{path} not found (relative paths are under --data_dir)")
      records, verifier, template = list(data.FileSource(path)), "math", MATH_TEMPLATE
    else:
      raise app.UsageError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)} "
                           "or a .jsonl/.parquet path")
    records = records[:_LIMIT.value or None]
    template = dict(config.prompts).get("task", template) if name not in BENCHMARKS else template
    results[name] = evaluate_records(sampler, records, verifier, template=template,
                                     samples=_SAMPLES.value, max_new_tokens=_MAX_NEW_TOKENS.value,
                                     temperature=_TEMPERATURE.value, seed=config.seed)
  k = _SAMPLES.value
  print(f"{'benchmark':<12} {'count':>6} {'avg@' + str(k):>8} {'pass@' + str(k):>8}")
  for name, r in results.items():
    print(f"{name:<12} {r['count']:>6} {r[f'avg@{k}']:>8.3f} {r[f'pass@{k}']:>8.3f}")
  with open(_OUT.value, "w") as f:
    json.dump(results, f, indent=2)


def define_flags():
  """Flags of the program; defined only when run as one (the trainer imports this module)."""
  global _CONFIG, _CHECKPOINT, _BENCHMARKS, _SAMPLES, _TEMPERATURE, _MAX_NEW_TOKENS, _LIMIT
  global _DATA_DIR, _OUT
  _CONFIG = config_flags.DEFINE_config_file(
      "config", os.path.join(os.path.dirname(__file__), "config.py"), "Run config (model, prompts).")
  _CHECKPOINT = flags.DEFINE_string(
      "checkpoint", None, "A run's workdir (its latest checkpoint) or an exported HF folder; "
      "default: the config's model.path.")
  _BENCHMARKS = flags.DEFINE_list("benchmarks", ["gsm8k"], f"Names ({', '.join(BENCHMARKS)}) "
                                  "or .jsonl paths.")
  _SAMPLES = flags.DEFINE_integer("samples", 1, "k samples per problem.")
  _TEMPERATURE = flags.DEFINE_float("temperature", 0.6, "0 = greedy (then use --samples=1).")
  _MAX_NEW_TOKENS = flags.DEFINE_integer("max_new_tokens", 512, "Tokens per answer.")
  _LIMIT = flags.DEFINE_integer("limit", 0, "Evaluate the first N problems of each (0 = all).")
  _DATA_DIR = flags.DEFINE_string("data_dir", None, "Folder that relative benchmark file "
                                  "paths are read from (default: the current folder).")
  _OUT = flags.DEFINE_string("out", "eval.json", "Output JSON file.")


if __name__ == "__main__":
  define_flags()
  app.run(main)
