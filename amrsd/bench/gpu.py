"""Forward, train step and decode at Qwen3-0.6B / 1.7B shapes on one accelerator.

  python -m amrsd.bench.gpu --out=DIR [--size=full|tiny] [--budget_s=270]

Random bfloat16 weights and random token ids (nothing is downloaded, no tokenizer): the
compute is that of the real models. In one run: a bfloat16 matmul and a copy measure
the card; then each part, most important first, prints its row as it finishes and
rewrites DIR/gpu_bench.json:
  forward  model(ids) over batch x length tokens per attention implementation:
           tokens/s, TFLOP/s and its fraction of the matmul rate.
  step     one GRPO update (SGD, remat save_dots) per attention implementation: seconds,
           TFLOP/s, fraction of the matmul rate.
  decode   greedy decode at batch 64 through the KV cache, block weights split per layer
           or sliced from the stacked arrays: tokens/s, and the step time against the HBM
           roofline (bytes of weights and filled KV read per step / copy bandwidth).
A part that fails prints its error and the run goes on; parts that would start after
--budget_s seconds are skipped. --size=tiny runs the same code on tiny shapes (CPU).
"""

import json
import os
import time
import traceback

from absl import app, flags

_OUT = flags.DEFINE_string("out", None, "Folder for gpu_bench.json.", required=True)
_SIZE = flags.DEFINE_enum("size", "full", ["full", "tiny"], "full: Qwen3 shapes; tiny: a check.")
_BUDGET = flags.DEFINE_float("budget_s", 270.0, "Start no part after this many seconds.")
_ATTENTION = flags.DEFINE_list("attention", ["cudnn", "xla", "chunked"],
                               "model.attention values compared (the first is the focus).")

# Hugging Face config.json values of Qwen/Qwen3-0.6B and Qwen/Qwen3-1.7B.
QWEN3 = dict(model_type="qwen3", vocab_size=151936, num_attention_heads=16,
             num_key_value_heads=8, head_dim=128, num_hidden_layers=28, rope_theta=1e6,
             rms_norm_eps=1e-6, max_position_embeddings=40960, tie_word_embeddings=True,
             qk_norm=True)
SHAPES = {
    "full": {"qwen3-0.6b": dict(QWEN3, hidden_size=1024, intermediate_size=3072),
             "qwen3-1.7b": dict(QWEN3, hidden_size=2048, intermediate_size=6144)},
    "tiny": {"tiny-a": dict(QWEN3, vocab_size=512, hidden_size=64, intermediate_size=128,
                            num_hidden_layers=2, num_attention_heads=4,
                            num_key_value_heads=2, head_dim=16),
             "tiny-b": dict(QWEN3, vocab_size=512, hidden_size=128, intermediate_size=256,
                            num_hidden_layers=3, num_attention_heads=4,
                            num_key_value_heads=2, head_dim=32)},
}
# Work sizes: forward rows x tokens, step rows x tokens, decode rows, prompt, new tokens,
# matmul n, copy MiB.
SIZES = {"full": dict(forward=(8, 2048), step=(4, 2048), decode=(64, 256, 128), matmul=8192,
                      copy_mib=2048),
         "tiny": dict(forward=(2, 64), step=(2, 64), decode=(4, 16, 16), matmul=256,
                      copy_mib=8)}


def main(argv):
  del argv
  import jax
  import jax.numpy as jnp

  start = time.perf_counter()
  os.makedirs(_OUT.value, exist_ok=True)
  path = os.path.join(_OUT.value, "gpu_bench.json")
  sizes = SIZES[_SIZE.value]
  report = {"device": jax.devices()[0].device_kind, "jax": jax.__version__,
            "size": _SIZE.value, "results": []}
  report["matmul_tflops"] = measure_matmul(jax, jnp, sizes["matmul"]) / 1e12
  report["copy_gbs"] = measure_copy(jax, jnp, sizes["copy_mib"]) / 1e9
  print(f"{report['device']}, jax {report['jax']}: bfloat16 matmul "
        f"{report['matmul_tflops']:.1f} TFLOP/s, copy {report['copy_gbs']:.0f} GB/s", flush=True)

  models_built = {}
  for name, part, option in _plan(list(SHAPES[_SIZE.value]), _ATTENTION.value):
    row = {"model": name, "part": part, "option": option}
    if time.perf_counter() - start > _BUDGET.value:
      row["error"] = "skipped: time budget"
    else:
      try:
        if name not in models_built:
          models_built.clear()  # one model in memory at a time
          models_built[name] = _random_model(SHAPES[_SIZE.value][name])
        run = {"forward": bench_forward, "step": bench_step, "decode": bench_decode}[part]
        row.update(run(models_built[name], option, sizes, report))
      except Exception as e:  # keep going: report the failure, run the next part
        traceback.print_exc()
        row["error"] = f"{type(e).__name__}: {str(e)[:300]}"
    report["results"].append(row)
    print(_format(row), flush=True)
    with open(path, "w") as f:
      json.dump(report, f, indent=1)
  print(f"\nsummary ({report['device']}; matmul {report['matmul_tflops']:.1f} TFLOP/s, copy "
        f"{report['copy_gbs']:.0f} GB/s; total {time.perf_counter() - start:.0f} s)")
  for row in report["results"]:
    print(_format(row))
  print(f"wrote {path}")


def _plan(names, attentions):
  """(model, part, option) in priority order: the focus attention and xla on every model
  first, then decode, then the other attentions."""
  first = [(n, p, a) for n in names for p in ("forward", "step") for a in attentions[:2]]
  decode = [(n, "decode", w) for n in names for w in ("stacked", "split")]
  rest = [(n, p, a) for n in names for p in ("forward", "step") for a in attentions[2:]]
  return first + decode + rest


def _random_model(fields):
  import jax.numpy as jnp
  from flax import nnx

  from amrsd import models
  config = models.ModelConfig(**fields)
  return models.Decoder(config, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))


def bench_forward(model, attention, sizes, report):
  import jax
  import jax.numpy as jnp
  from flax import nnx

  from amrsd.bench.flops import forward_flops
  batch, length = sizes["forward"]
  model.attention = attention
  graphdef, state = nnx.split(model)

  def mean_logprob(state, ids):
    # Reduced on device: the [B, T, V] float32 logits stay a temporary.
    logits = nnx.merge(graphdef, state)(ids)
    return jnp.mean(jax.nn.log_softmax(logits[:, :-1]).max(axis=-1))

  ids = _random_ids(model, batch, length)
  seconds, compile_s = _time(jax.jit(mean_logprob), state, ids)
  flops = forward_flops(model.config, batch, length)
  return _rates(flops, seconds, report) | {
      "tokens_per_s": batch * length / seconds, "seconds": seconds, "compile_s": compile_s,
      "shape": f"{batch}x{length}"}


def bench_step(model, attention, sizes, report):
  import jax
  import optax
  from flax import nnx

  from amrsd.algorithms.config import AlgorithmConfig
  from amrsd.algorithms.step import make_train_step
  from amrsd.bench.step import step_flops, synthetic_batch
  rows, length = sizes["step"]
  response = length // 2
  model.attention, model.remat = attention, "save_dots"
  graphdef, state = nnx.split(model)
  tx = optax.sgd(1e-6)
  step = make_train_step(graphdef, tx, AlgorithmConfig(name="grpo", group_size=min(rows, 4)))
  batch = synthetic_batch(rows, length, response, hint_len=32, vocab=model.config.vocab_size)
  # The step may donate its inputs: it updates a copy, each call feeding the next.
  carry = [jax.tree.map(lambda x: x.copy(), state), tx.init(state)]

  def call():
    carry[0], carry[1], metrics = step(carry[0], carry[1], batch, 0)
    jax.block_until_ready(metrics)

  compile_s = _timed(call)
  seconds = min(_timed(call) for _ in range(2))
  model.remat = "none"
  flops = step_flops(model.config, rows, length, None, response)
  return _rates(flops, seconds, report) | {
      "seconds": seconds, "compile_s": compile_s, "tokens_per_s": rows * length / seconds,
      "shape": f"{rows}x{length}"}


def bench_decode(model, weights, sizes, report):
  import jax
  import jax.numpy as jnp
  import numpy as np
  from flax import nnx

  from amrsd.sampling import decode as decode_lib
  rows, prompt, new = sizes["decode"]
  model.attention = "auto"
  graphdef, state = nnx.split(model)
  ids = _random_ids(model, rows, prompt)
  mask = jnp.ones_like(ids)
  prefill = jax.jit(lambda s, i, m: decode_lib.prefill(graphdef, s, i, m, n=1, budget=new))
  mode = decode_lib.DecodeMode(greedy=True, filtered=False, split_weights=weights == "split")
  decode = jax.jit(lambda s, c, lg, ln: decode_lib.decode(
      graphdef, s, c, lg, ln, jnp.ones((rows,), bool), jnp.arange(rows, dtype=jnp.int32),
      jax.random.key(0), jnp.float32(1), jnp.float32(1), jnp.int32(0), jnp.int32(new),
      mode=mode, budget=new, eos_ids=(-1,), pad_id=0), donate_argnums=1)

  def run():
    cache, logits, lengths = prefill(state, ids, mask)
    jax.block_until_ready(logits)
    begin = time.perf_counter()
    steps = int(decode(state, cache, logits, lengths)[3])  # waits for the loop
    return time.perf_counter() - begin, steps

  begin = time.perf_counter()
  run()
  compile_s = time.perf_counter() - begin
  seconds, steps = min(run() for _ in range(2))
  step_s = seconds / max(steps - 1, 1)
  c = model.config
  weight_bytes = sum(x.nbytes for x in jax.tree.leaves(state))
  kv_bytes = (2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim
              * np.dtype(jnp.bfloat16).itemsize * rows * (prompt + new // 2))
  roofline_s = (weight_bytes + kv_bytes) / (report["copy_gbs"] * 1e9)
  return {"tokens_per_s": rows * steps / seconds, "step_ms": step_s * 1e3,
          "roofline_ms": roofline_s * 1e3, "x_roofline": step_s / roofline_s,
          "weight_gb": weight_bytes / 1e9, "kv_gb": kv_bytes / 1e9, "compile_s": compile_s,
          "shape": f"{rows} rows, {prompt}+{new} tokens"}


def measure_matmul(jax, jnp, n, repeats=5):
  """FLOP/s of a jitted bfloat16 [n, n] @ [n, n] (best of `repeats`)."""
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.bfloat16)
  matmul = jax.jit(jnp.matmul)
  matmul(a, a).block_until_ready()
  return 2 * n**3 / min(_timed(lambda: matmul(a, a).block_until_ready())
                        for _ in range(repeats))


def measure_copy(jax, jnp, mib, repeats=5):
  """Bytes/s moved by a jitted elementwise copy (read + write) of a `mib` MiB array."""
  x = jnp.ones((mib * 2**20 // 4,), jnp.float32)
  copy = jax.jit(lambda x: x + 1)
  copy(x).block_until_ready()
  return 2 * x.nbytes / min(_timed(lambda: copy(x).block_until_ready())
                            for _ in range(repeats))


def _random_ids(model, rows, length):
  import jax
  import jax.numpy as jnp
  return jax.random.randint(jax.random.key(1), (rows, length), 2, model.config.vocab_size,
                            jnp.int32)


def _time(fn, *args):
  """(best steady seconds of 3, first-call seconds) of a jitted fn."""
  import jax
  begin = time.perf_counter()
  jax.block_until_ready(fn(*args))
  compile_s = time.perf_counter() - begin
  return min(_timed(lambda: jax.block_until_ready(fn(*args))) for _ in range(3)), compile_s


def _rates(flops, seconds, report):
  tflops = flops / seconds / 1e12
  return {"tflops": tflops, "of_matmul": tflops / report["matmul_tflops"]}


def _timed(fn):
  begin = time.perf_counter()
  fn()
  return time.perf_counter() - begin


def _format(row):
  head = f"{row['model']:11s} {row['part']:7s} {row['option']:8s}"
  if "error" in row:
    return f"{head} ERROR {row['error']}"
  if row["part"] == "decode":
    return (f"{head} {row['shape']}: {row['tokens_per_s']:,.0f} tokens/s, step "
            f"{row['step_ms']:.2f} ms vs roofline {row['roofline_ms']:.2f} ms = "
            f"{row['x_roofline']:.2f}x (weights {row['weight_gb']:.2f} GB + KV "
            f"{row['kv_gb']:.2f} GB; compile {row['compile_s']:.0f} s)")
  return (f"{head} {row['shape']}: {row['seconds'] * 1e3:8.1f} ms, {row['tokens_per_s']:,.0f} "
          f"tokens/s, {row['tflops']:.1f} TFLOP/s = {row['of_matmul']:.0%} of matmul "
          f"(compile {row['compile_s']:.0f} s)")


if __name__ == "__main__":
  app.run(main)
