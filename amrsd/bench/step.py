"""Benchmark: one AMR-SD update against one GRPO update on the same batch.

    python -m amrsd.bench.step [--rows 4] [--tokens 256]

Real SmolLM2-135M-Instruct, CPU. Prints (never asserts): the AMR-SD / GRPO wall-time
ratio for both teacher layouts (goal <= 1.35), the CIG kernel's share of the AMR-SD
step (goal < 1 %), and each step's achieved FLOP/s as a fraction of a large float32
matmul timed in the same run. The brief's size is 64 rows x 256 tokens; on a shared
2-core / 24 GB machine the default is 4 rows (the step is linear in rows).
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from amrsd import models
from amrsd.algorithms import cig
from amrsd.algorithms.config import AlgorithmConfig
from amrsd.algorithms.step import make_train_step


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rows", type=int, default=4, help="student rows N (G = min(N, 4))")
  parser.add_argument("--tokens", type=int, default=256, help="student row length P + R")
  parser.add_argument("--repeats", type=int, default=2, help="timed steps per method")
  args = parser.parse_args()

  model, _ = models.load(models.default_model_path())
  graphdef, state = nnx.split(model)
  c = model.config
  n, t = args.rows, args.tokens
  r = t // 2
  batch = synthetic_batch(n, t, r, hint_len=32, vocab=c.vocab_size)
  group = min(n, 4)
  tx = optax.sgd(1e-6)  # stateless: the comparison is the loss and gradient work

  matmul_flops = _matmul_flops_per_second()
  print(f"device: {jax.devices()[0].device_kind}, {n} rows x {t} tokens "
        f"(response {r}, teacher context +32), large f32 matmul {matmul_flops / 1e9:.1f} GFLOP/s")

  times = {}
  for label, config in (
      ("grpo", AlgorithmConfig(name="grpo", group_size=group)),
      ("amrsd/separate", AlgorithmConfig(name="amrsd", group_size=group)),
      ("amrsd/stacked", AlgorithmConfig(name="amrsd", group_size=group,
                                        teacher_forward="stacked"))):
    step = make_train_step(graphdef, tx, config)
    state_copy = jax.tree.map(jnp.copy, state)
    start = time.perf_counter()
    state_copy, opt_state, metrics = step(state_copy, tx.init(state_copy), batch, 0)
    jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - start
    best = float("inf")
    for _ in range(args.repeats):
      start = time.perf_counter()
      state_copy, opt_state, metrics = step(state_copy, opt_state, batch, 0)
      jax.block_until_ready(metrics)
      best = min(best, time.perf_counter() - start)
    times[label] = best
    flops = step_flops(c, n, t, t + 32 if label != "grpo" else None, r)
    print(f"{label:15s} step {best:7.2f} s (first call {compile_s:.1f} s)  "
          f"{flops / best / 1e9:6.1f} GFLOP/s = {flops / best / matmul_flops:5.1%} of matmul  "
          f"loss {float(metrics['loss']):.4f}")
    del state_copy, opt_state

  kernel_s = _time_cig_kernel(n, r)
  for label in ("amrsd/separate", "amrsd/stacked"):
    print(f"ratio {label} / grpo: {times[label] / times['grpo']:.3f} (goal <= 1.35)")
  print(f"CIG kernel {kernel_s * 1e3:.3f} ms = {kernel_s / times['amrsd/separate']:.4%} "
        "of the AMR-SD step (goal < 1 %)")


def synthetic_batch(n, t, r, hint_len, vocab):
  """Random tokens in the step's layout: full-length rows, the teacher sees a longer context."""
  rng = np.random.default_rng(0)
  response = rng.integers(3, vocab, (n, r)).astype(np.int32)
  student = np.concatenate([rng.integers(3, vocab, (n, t - r)), response], 1).astype(np.int32)
  teacher = np.concatenate([rng.integers(3, vocab, (n, t - r + hint_len)), response], 1)
  return {
      "student_ids": student, "student_mask": np.ones_like(student),
      "teacher_ids": teacher.astype(np.int32), "teacher_mask": np.ones_like(teacher, np.int32),
      "response_mask": np.ones((n, r), np.float32),
      "logp_old": np.full((n, r), -10.8, np.float32),  # about log(1 / vocab)
      "rewards": (np.arange(n) % 2).astype(np.float32),
      "has_hint": np.ones((n,), np.float32),
  }


def step_flops(c, n, t, teacher_t, r):
  """Matmul FLOPs of one step: student forward + backward (3x), teacher forward (1x)."""
  q, kv = c.num_attention_heads * c.head_dim, c.num_key_value_heads * c.head_dim
  per_token = 2 * c.num_hidden_layers * (c.hidden_size * (2 * q + 2 * kv)
                                         + 3 * c.hidden_size * c.intermediate_size)
  def forward(rows_len):
    attention = 4 * c.num_hidden_layers * rows_len * q  # QK^T and PV, full square
    return n * rows_len * (per_token + attention) + n * r * 2 * c.hidden_size * c.vocab_size
  flops = 3 * forward(t)
  if teacher_t is not None:
    flops += forward(teacher_t)
  return flops


def _matmul_flops_per_second(size=2048, repeats=5):
  a = jnp.ones((size, size), jnp.float32)
  matmul = jax.jit(lambda x: x @ x)
  matmul(a).block_until_ready()
  start = time.perf_counter()
  for _ in range(repeats):
    matmul(a).block_until_ready()
  return 2 * size ** 3 * repeats / (time.perf_counter() - start)


def _time_cig_kernel(n, r, repeats=200):
  config = AlgorithmConfig(name="amrsd")
  rng = np.random.default_rng(1)
  args = (jnp.asarray(rng.normal(size=n), jnp.float32),
          jnp.asarray(-rng.uniform(0, 3, (n, r)), jnp.float32),
          jnp.asarray(-rng.uniform(0, 3, (n, r)), jnp.float32),
          jnp.ones((n, r), jnp.float32), jnp.ones((n,), jnp.float32), jnp.int32(3))
  kernel = jax.jit(lambda *a: cig.amrsd_token_advantages(*a, config))
  jax.block_until_ready(kernel(*args))
  start = time.perf_counter()
  for _ in range(repeats):
    jax.block_until_ready(kernel(*args))
  return (time.perf_counter() - start) / repeats


if __name__ == "__main__":
  main()
