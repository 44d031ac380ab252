"""Device side of the sampler: prefill and a decode loop over a KV cache, as pure functions.

Both functions take the model as (graphdef, state) so that the weights are arguments of
the compiled program, never constants baked into it: a training step that changes the
weights is seen by the next call without recompiling.

Two ways to read the block weights in the decode loop (DecodeMode.split_weights):
split: into per-layer arrays once, before the first step (`Decoder.hidden_states(
  layers=...)`): a transient copy of the block weights, for XLA:CPU, which copies a slice
  of the stacked weights at every step where it is taken inside the loop.
stacked: sliced inside each step from the stacked [L, ...] arrays: no copy of the
  weights per call, for GPUs and TPUs, whose compilers feed a slice to the matmul.
`choose_weights` picks by backend.

Decode attention reads only the filled part of the cache: the loop runs in segments, one
per window (powers of two above the prompt width, up to the cache size), and a step in
the segment of window W attends over the first W slots.
"""

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from amrsd.models import init_cache


@dataclasses.dataclass(frozen=True)
class DecodeMode:
  """What is static in the decode program (each distinct value compiles once).

  greedy: temperature 0, argmax. filtered: top-k and/or top-p filtering is on, which
  needs one full-vocabulary sort per step, so plain sampling skips it.
  split_weights: split the block weights per layer before the loop (see the module
  docstring); False slices them from the stacked arrays inside each step.
  """
  greedy: bool
  filtered: bool
  split_weights: bool = True


WEIGHT_CHOICES = ("auto", "split", "stacked")


def choose_weights(name: str) -> bool:
  """split_weights for a WEIGHT_CHOICES name. auto splits everywhere but on TPUs: split
  weights decoded 1.3-1.6x faster than in-loop slices on XLA:CPU and on an H200 (README,
  Measured); TPUs keep the stacked weights (no extra parameter copy, not yet measured)."""
  if name not in WEIGHT_CHOICES:
    raise ValueError(f"decode_weights={name!r}: choose one of {', '.join(WEIGHT_CHOICES)}")
  if name == "auto":
    return jax.default_backend() != "tpu"
  return name == "split"


def windows(slots: int, budget: int) -> list[int]:
  """Attention windows of the decode segments: powers of two above the prompt width
  slots - budget, then the cache size `slots`."""
  sizes, width = [], 1 << (slots - budget).bit_length()
  while width < slots:
    sizes.append(width)
    width *= 2
  return sizes + [slots]


def prefill(graphdef, state, prompt_ids, prompt_mask, *, n, budget, batch_sharding=None):
  """Runs the prompts once and repeats the result for n samples per prompt.

  prompt_ids, prompt_mask: [B, P] int32, left-padded (mask 1 real, 0 pad).
  n: samples per prompt (static). budget: decode slots reserved after the prompt (static).
  batch_sharding: optional callable that constrains an array's batch axis (mesh runs).
  Returns (cache with B*n rows and P + budget slots, float32 logits [B*n, V] of the
  token after each prompt, int32 prompt lengths [B*n]). Rows are prompt-major: the n
  copies of prompt b are rows b*n .. b*n + n - 1.
  """
  model = nnx.merge(graphdef, state)
  batch, width = prompt_ids.shape
  params_dtype = model.embed[...].dtype
  cache = init_cache(model.config, batch, width + budget, params_dtype)
  if batch_sharding is not None:
    cache = _constrain_cache(cache, batch_sharding)
  hidden, cache = model.hidden_states(prompt_ids, prompt_mask, cache=cache)
  # Left padding puts every prompt's last real token in the last column.
  logits = model.unembed(hidden[:, -1])
  lengths = prompt_mask.astype(jnp.int32).sum(axis=1)
  if n > 1:
    repeat = lambda x, axis: jnp.repeat(x, n, axis=axis)
    cache = dataclasses.replace(cache, k=tuple(repeat(k, 0) for k in cache.k),
                                v=tuple(repeat(v, 0) for v in cache.v),
                                mask=repeat(cache.mask, 0))
    logits, lengths = repeat(logits, 0), repeat(lengths, 0)
  if batch_sharding is not None:
    cache = _constrain_cache(cache, batch_sharding)
    logits, lengths = batch_sharding(logits, 0), batch_sharding(lengths, 0)
  return cache, logits, lengths


def decode(graphdef, state, cache, logits, lengths, active, row_ids, key, temperature, top_p,
           top_k, max_new_tokens, *, mode: DecodeMode, budget: int, eos_ids: tuple[int, ...],
           pad_id: int, prompt_width: int | None = None):
  """Samples up to max_new_tokens tokens per row; stops early once every row is done.

  cache, logits [R, V], lengths [R]: from `prefill` (or, for a later turn of a
  multi-turn episode, from `extend`: lengths = real tokens in the cache); tokens go into
  slots from cache.index on. A sampled token enters the cache when the next step runs,
  as a real slot only while its row was live, so a finished row's cache ends at its last
  sampled token (the last step's token is not written). active: [R] bool, False for
  padding rows (done from the start). row_ids: [R] int32, key: a PRNG key; row r draws from
  fold_in(fold_in(key, row_ids[r]), step), so a row's samples depend on its id, not on
  the batch size, the padding or the process that holds it.
  temperature, top_p: float32 scalars; top_k: int32 scalar (0 = off);
  max_new_tokens: int32 scalar <= budget.
  Returns tokens [R, budget] int32 (pad_id after the end), logprobs [R, budget] float32
  (temperature-1 log-softmax of each sampled token, 0 after the end), mask [R, budget]
  int32 (1 up to and including the EOS token), the number of steps run, and the final
  cache (returned so that a donated input cache is updated in place).
  budget (static): columns of the outputs. prompt_width (static): the prompt's slots,
  where the attention windows start; default the cache's slots less the budget.
  """
  model = nnx.merge(graphdef, state)
  layers = model.split_layers() if mode.split_weights else None
  rows = logits.shape[0]
  slots = cache.k[0].shape[2]
  width = slots - budget if prompt_width is None else prompt_width
  start = cache.index  # the slot step 1 writes
  row_keys = jax.vmap(jax.random.fold_in, (None, 0))(key, row_ids)
  eos = jnp.asarray(eos_ids, jnp.int32)

  def pick(logits, step, done):
    step_keys = jax.vmap(jax.random.fold_in, (0, None))(row_keys, step)
    token = select_tokens(logits, step_keys, temperature, top_p, top_k, mode)
    logp = _token_logprob(logits, token)
    token = jnp.where(done, pad_id, token)
    return token, jnp.where(done, 0.0, logp), done | jnp.isin(token, eos)

  tokens = jnp.full((rows, budget), pad_id, jnp.int32)
  logprobs = jnp.zeros((rows, budget), jnp.float32)
  mask = jnp.zeros((rows, budget), jnp.int32)

  def record(buffers, step, token, logp, done_before):
    tokens, logprobs, mask = buffers
    column = lambda buf, value: jax.lax.dynamic_update_slice(buf, value[:, None], (0, step))
    return (column(tokens, token), column(logprobs, logp),
            column(mask, (~done_before).astype(jnp.int32)))

  done = ~active
  token, logp, new_done = pick(logits, 0, done)
  buffers = record((tokens, logprobs, mask), 0, token, logp, done)

  def segment(window):
    def cond(carry):
      step, _, _, _, done, _ = carry
      # Step s writes slot start + s - 1, which must lie inside the window.
      return (step < max_new_tokens) & ~jnp.all(done) & (start + step <= window)

    def body(carry):
      step, cache, token, live, done, buffers = carry
      # The token sampled at step - 1 sits at RoPE position length + step - 1; it is a
      # real slot only if its row was live when it was sampled.
      positions = (lengths + step - 1)[:, None]
      hidden, cache = model.hidden_states(token[:, None], live[:, None].astype(jnp.int32),
                                          positions=positions, cache=cache, layers=layers,
                                          window=window)
      logits = model.unembed(hidden[:, 0])
      token, logp, new_done = pick(logits, step, done)
      buffers = record(buffers, step, token, logp, done)
      return step + 1, cache, token, ~done, new_done, buffers
    return cond, body

  carry = (jnp.int32(1), cache, token, ~done, new_done, buffers)
  for window in windows(slots, slots - width):
    carry = jax.lax.while_loop(*segment(window), carry)
  steps, cache, _, _, _, (tokens, logprobs, mask) = carry
  return tokens, logprobs, mask, steps, cache


def select_tokens(logits, keys, temperature, top_p, top_k, mode: DecodeMode):
  """Next token per row. logits [R, V] float32; keys [R] PRNG keys. Returns [R] int32.

  Sampling draws one uniform number per row and inverts the CDF of the (filtered)
  distribution: exact, and far cheaper on CPU than a Gumbel draw per vocabulary entry.
  """
  if mode.greedy:
    # The first maximal entry, as jnp.argmax finds it: a float argmax is a two-operand
    # reduce that XLA:CPU runs about 4x slower than a max and an argmax over booleans.
    best = jnp.max(logits, axis=-1, keepdims=True)
    return jnp.argmax(logits == best, axis=-1).astype(jnp.int32)
  scaled = logits / temperature
  if mode.filtered:
    scaled = jnp.where(_keep_mask(scaled, top_p, top_k), scaled, -jnp.inf)
  probs = jnp.exp(scaled - jnp.max(scaled, axis=-1, keepdims=True))
  cdf = jnp.cumsum(probs, axis=-1)
  u = jax.vmap(lambda k: jax.random.uniform(k, ()))(keys)
  threshold = u * cdf[:, -1]
  index = jnp.sum(cdf <= threshold[:, None], axis=-1)
  # Rounding can push the threshold to the total; fall back to the last kept token.
  vocab = logits.shape[-1]
  last_kept = vocab - 1 - jnp.argmax((probs > 0)[:, ::-1], axis=-1)
  return jnp.minimum(index, last_kept).astype(jnp.int32)


def _keep_mask(scaled, top_p, top_k):
  """[R, V] bool: top-k first, then the smallest top-p nucleus (always >= 1 token)."""
  vocab = scaled.shape[-1]
  ordered = -jnp.sort(-scaled, axis=-1)  # descending
  rank = jnp.arange(vocab)
  ordered = jnp.where((top_k <= 0) | (rank < top_k), ordered, -jnp.inf)
  probs = jax.nn.softmax(ordered, axis=-1)
  mass_before = jnp.cumsum(probs, axis=-1) - probs
  kept = jnp.sum((mass_before < top_p) & (ordered > -jnp.inf), axis=-1)
  cutoff = jnp.take_along_axis(ordered, jnp.maximum(kept - 1, 0)[:, None], axis=-1)
  return scaled >= cutoff


def _token_logprob(logits, token):
  """log softmax(logits)[token] at temperature 1, without a vocabulary-sized output."""
  picked = jnp.take_along_axis(logits, token[:, None], axis=-1)[:, 0]
  return picked - jax.nn.logsumexp(logits, axis=-1)


def _constrain_cache(cache, batch_sharding):
  return dataclasses.replace(cache, k=tuple(batch_sharding(k, 0) for k in cache.k),
                             v=tuple(batch_sharding(v, 0) for v in cache.v),
                             mask=batch_sharding(cache.mask, 0))


def extend(graphdef, state, cache, ids, mask, *, batch_sharding=None):
  """Appends a chunk of tokens to every row's cache (a multi-turn episode's observation).

  ids, mask: [R, C] int32, left-padded (a row with nothing to add is all padding).
  Returns (cache, float32 logits [R, V] of the token after each row's chunk, int32 real
  tokens per row in the cache), as `prefill` does for the prompt.
  """
  model = nnx.merge(graphdef, state)
  hidden, cache = model.hidden_states(ids, mask, cache=cache)
  logits = model.unembed(hidden[:, -1])  # left padding: a chunk's last token is the last column
  lengths = jnp.sum(cache.mask, axis=1, dtype=jnp.int32)
  if batch_sharding is not None:
    cache = _constrain_cache(cache, batch_sharding)
    logits, lengths = batch_sharding(logits, 0), batch_sharding(lengths, 0)
  return cache, logits, lengths
