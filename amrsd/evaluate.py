"""Evaluation: avg@k and pass@k on held-out problems.

  python -m amrsd.evaluate --checkpoint=<run workdir> \
      --benchmarks=aime24,aime25,amc23,hmmt25_feb,math500,gsm8k --samples=4

With a run's workdir the run's own saved config (model, dtype, trainable set and LoRA,
prompt template, verifier) is read from its latest checkpoint and the trained weights
are restored read-only. Benchmarks are the sets shipped with amrsd, by name
(amrsd.data.BENCHMARKS), or JSONL / Parquet files by path (relative ones under
--data_dir); a file is graded like the run (its verifier, template and field mapping).
Names and files are read before the model loads. Writes eval.json (per benchmark, after
each one: avg@k, pass@k, count) and prints a table; with --samples_out, every answer as
one JSON line (benchmark, problem, gold, the completion or the episode's transcript,
reward and the verifier's feedback), to see why a set scores what it does.
"""

import json
import os
import sys

from absl import app, flags, logging

from amrsd import config as config_lib

_CONFIG = config_lib.define_config_flag(
    "amrsd.evaluate", config_lib.__file__, "Run config (model, prompts, verifier) when "
    "--checkpoint is not a run's workdir; a run's workdir brings its own saved config.")
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "A run's workdir (its latest checkpoint and saved config) or an "
    "exported HF folder; default: the config's model.")
_BENCHMARKS = flags.DEFINE_list(
    "benchmarks", ["gsm8k"], "Names of the shipped sets (aime24, aime25, amc23, hmmt25_feb, "
    "hmmt25_nov, math500, gsm8k, sciknoweval_<biology|chemistry|material|physics>, tooluse), "
    "bfcl:<category> (one category per name), bfcl_mt:<category> (multi-turn episodes, "
    "played) or .jsonl/.jsonl.gz/.parquet paths.")
_SAMPLES = flags.DEFINE_integer("samples", 1, "k samples per problem.")
_TEMPERATURE = flags.DEFINE_float("temperature", 0.6, "0 = greedy (then use --samples=1).")
_MAX_NEW_TOKENS = flags.DEFINE_integer("max_new_tokens", 512, "Tokens per answer; for "
                                       "episodes, cache slots per episode.")
_MAX_TURNS = flags.DEFINE_integer("max_turns", None, "Episodes: assistant messages at most "
                                  "(default: the config's rollout.max_turns).")
_TOKENS_PER_TURN = flags.DEFINE_integer("max_tokens_per_turn", None, "Episodes: tokens of one "
                                        "assistant message (default: the config's "
                                        "rollout.max_tokens_per_turn).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Problems per sampler call (times "
                                   "--samples rows); lower it when memory is short.")
_LIMIT = flags.DEFINE_integer("limit", 0, "Evaluate the first N problems of each (0 = all).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Folder that relative benchmark file paths "
                                "are read from (default: the current folder).")
_OUT = flags.DEFINE_string("out", "eval.json", "Output JSON file.")
_SAMPLES_OUT = flags.DEFINE_string(
    "samples_out", "", "JSONL file for every answer: benchmark, index (in the set), id (or "
    "unique_id), problem, gold answer, sample, completion (an episode's transcript), "
    "reward, feedback; with several processes each writes FILE.p<process>. Empty: not "
    "written.")


def run_config(checkpoint, config):
  """(config, checkpoint step or None): a run workdir's saved config, an exported HF
  folder as config.model.path, or `config` itself when there is no checkpoint."""
  if not checkpoint:
    return config, None
  if os.path.isfile(os.path.join(checkpoint, "config.json")):
    config = config.copy_and_resolve_references()
    config.model.path, config.train.trainable = checkpoint, "full"
    return config, None
  if not os.path.isdir(checkpoint):
    raise FileNotFoundError(f"--checkpoint={checkpoint}: no such folder (give a run's workdir "
                            "or an exported HF folder)")
  from amrsd.checkpointing import read_latest_meta
  step, meta = read_latest_meta(checkpoint)
  saved = config_lib.default_config()
  config_lib.overlay(saved, meta["config"], f"{checkpoint} (saved config)")
  return saved, step


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  try:
    evaluate()
  except (ValueError, OSError) as e:
    # Unknown benchmarks, missing files and checkpoints: one line says what and where.
    if os.environ.get("AMRSD_TRACEBACK"):
      raise
    sys.exit(f"amrsd.evaluate: {type(e).__name__}: {e}")


def evaluate():
  from amrsd import run_setup, scoring
  config, step = run_config(_CHECKPOINT.value, _CONFIG.value)
  template = run_setup.task_template(config)
  if (any(name.startswith("bfcl_mt:") for name in _BENCHMARKS.value) and
      (_TOKENS_PER_TURN.value or config.rollout.max_tokens_per_turn) > _MAX_NEW_TOKENS.value):
    raise ValueError(f"an episode's message can be longer than the episode: --max_tokens_per_"
                     f"turn (or the config's rollout.max_tokens_per_turn) is more than "
                     f"--max_new_tokens={_MAX_NEW_TOKENS.value}; lower it or raise "
                     "--max_new_tokens")
  sets = {name: scoring.resolve_benchmark(name, _DATA_DIR.value, verifier=config.data.verifier,
                                          template=template, dataset=config.data.dataset)
          for name in _BENCHMARKS.value}

  from flax import nnx

  from amrsd.checkpointing import abstract_like, restore_params
  from amrsd.sampling import Sampler
  model, tokenizer, _ = run_setup.load_policy(config)
  if step is not None:
    nnx.update(model, restore_params(_CHECKPOINT.value, step, abstract_like(nnx.state(model))))
  sampler = Sampler(model, tokenizer)
  episodes = scoring.EpisodeLimits(_MAX_TURNS.value or config.rollout.max_turns,
                                   _TOKENS_PER_TURN.value or config.rollout.max_tokens_per_turn)
  results, answers, samples_path = {}, [], ""
  for name, (records, verifier, template) in sets.items():
    records = records[:_LIMIT.value or None]
    kept = [] if _SAMPLES_OUT.value else None
    results[name] = scoring.evaluate_records(
        sampler, records, verifier, template=template,
        samples=_SAMPLES.value, max_new_tokens=_MAX_NEW_TOKENS.value,
        temperature=_TEMPERATURE.value, seed=config.seed, batch_size=_BATCH_SIZE.value,
        episodes=episodes, answers=kept, progress=name)
    for answer in kept or ():
      record = records[answer["index"]]
      answers.append({"benchmark": name, "index": answer["index"],
                      "id": record.get("id", record.get("unique_id")),
                      "problem": record.get("problem"), "gold": record.get("answer"),
                      **answer})
    # After every set: a later set that fails or is killed loses only its own scores.
    samples_path = _write_outputs(results, answers)
  k = _SAMPLES.value
  width = max(len("benchmark"), *map(len, results))
  print(f"{'benchmark':<{width}} {'count':>6} {'avg@' + str(k):>8} {'pass@' + str(k):>8}")
  for name, r in results.items():
    print(f"{name:<{width}} {r['count']:>6} {r[f'avg@{k}']:>8.3f} {r[f'pass@{k}']:>8.3f}")
  if samples_path:
    print(f"wrote {len(answers)} answers to {samples_path}")


def _write_outputs(results, answers):
  """Writes --out (first process) and --samples_out (every process its own answers), each
  replaced whole; returns the samples file's path ("" when not asked for)."""
  import jax

  from amrsd import distributed
  if distributed.is_primary():
    _replace(_OUT.value, json.dumps(results, indent=2))
  if not _SAMPLES_OUT.value:
    return ""
  path = _SAMPLES_OUT.value + (f".p{jax.process_index()}" if jax.process_count() > 1 else "")
  # Golds of some sets are lists or objects: written as JSON.
  _replace(path, "".join(json.dumps(a, default=str) + "\n" for a in answers))
  return path


def _replace(path, text):
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path + ".tmp", "w") as f:
    f.write(text)
  os.replace(path + ".tmp", path)


if __name__ == "__main__":
  logging.set_verbosity(logging.ERROR)  # orbax warns that a read-only manager saves nothing
  app.run(main)
