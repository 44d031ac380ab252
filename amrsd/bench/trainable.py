"""Cost of one AMR-SD update by trainable subset: full, top_layers, lora.

  python -m amrsd.bench.trainable [--rows=64] [--repeats=3]

Builds the trainer of the embedded default for each subset and times its jitted train
step on the same synthetic batch, shaped like a default step (8 prompts x 8 samples,
48-token prompts, 16 response tokens, 128-token teacher contexts). Full fine-tuning is
the reference; the subsets are timed in turn, alternating, and the best time is kept.
"""

import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags, logging

from amrsd import config as config_lib
from amrsd.trainer import Trainer

_ROWS = flags.DEFINE_integer("rows", 64, "Rows per update (prompts x group).")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed updates per subset.")
_TOP = flags.DEFINE_integer("top_layers", 4, "Blocks trained with top_layers.")

SUBSETS = ("full", "top_layers", "lora")


def synthetic_batch(rows, vocab, seed=0):
  rng = np.random.default_rng(seed)
  prompt, response, context = 48, 16, 128
  def part(width):
    return rng.integers(3, vocab, (rows, width)).astype(np.int32)
  resp = part(response)
  return {
      "student_ids": np.concatenate([part(prompt), resp], 1),
      "student_mask": np.ones((rows, prompt + response), np.int32),
      "teacher_ids": np.concatenate([part(context), resp], 1),
      "teacher_mask": np.ones((rows, context + response), np.int32),
      "response_mask": np.ones((rows, response), np.float32),
      "logp_old": -rng.uniform(0.1, 3.0, (rows, response)).astype(np.float32),
      "rewards": rng.integers(0, 2, rows).astype(np.float32),
      "has_hint": np.ones((rows,), np.float32),
  }


def main(argv):
  del argv
  trainers = {}
  for subset in SUBSETS:
    config = config_lib.default_config()
    config.workdir = tempfile.mkdtemp(prefix=f"bench_{subset}_")
    config.train.trainable = subset
    config.train.top_layers = _TOP.value
    trainers[subset] = Trainer(config)
  vocab = trainers["full"].model.config.vocab_size
  batch = {k: jnp.asarray(v) for k, v in synthetic_batch(_ROWS.value, vocab).items()}
  best = {s: float("inf") for s in SUBSETS}
  compile_s = {}
  for repeat in range(_REPEATS.value + 1):
    for subset, t in trainers.items():
      start = time.perf_counter()
      t.params, t.opt_state, metrics = t.train_step(t.params, t.opt_state, batch, jnp.int32(0))
      jax.block_until_ready(metrics["loss"])
      seconds = time.perf_counter() - start
      if repeat == 0:
        compile_s[subset] = seconds
      else:
        best[subset] = min(best[subset], seconds)
  print(f"AMR-SD update, {_ROWS.value} rows x (48 + 16) student and (128 + 16) teacher tokens, "
        f"SmolLM2-135M, {jax.device_count()} {jax.devices()[0].platform} device(s)")
  for subset in SUBSETS:
    print(f"{subset:11s} {best[subset]:7.2f} s (first call {compile_s[subset]:.1f} s)  "
          f"{best[subset] / best['full']:.2f}x full")


if __name__ == "__main__":
  logging.set_verbosity(logging.WARNING)
  app.run(main)
