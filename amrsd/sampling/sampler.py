"""Batched KV-cache sampler: host side (prompts, buckets, stop strings, detokenization).

Shapes are bucketed so that the jitted prefill and decode compile a bounded number of
times: prompts are left-padded to the smallest prompt bucket that fits (64, 96, 128,
192, ... by default), the number of prompts is padded to a row bucket (amrsd.buckets.fit:
1, 2, 3, 4, 6, 8, 12, ..., times the mesh's batch shards), and the decode budget is max_new_tokens rounded up to a
power of two (at least 16). A new call with prompts of similar length reuses the
compiled programs; `Sampler.compile_count` counts how many were built.

n samples per prompt: each distinct prompt is prefilled once, and the cache and the
next-token logits are repeated n times on device.

Stop strings are applied on the host after decoding: the device decodes until EOS or
the budget. The first stop-string match in a row's decoded text ends that row: `texts`
ends just before the match; the token that completes the match stays in the mask (it
was sampled and its log-prob is real); every later token is replaced by the pad id,
with log-prob 0 and mask 0.
"""

import dataclasses
import functools
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from amrsd import buckets, distributed, sharding
from amrsd.sampling import decode as decode_lib

DEFAULT_PROMPT_BUCKETS = (64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096)
MIN_DECODE_BUDGET = 16
BATCH_AXES = ("data", "fsdp")


@dataclasses.dataclass
class SampleResult:
  """Generated rows, prompt-major (the n samples of prompt 0 first). rows = prompts * n.

  prompt_ids, prompt_mask: [rows, P] int32, left-padded to the prompt bucket P.
  completion_ids: [rows, max_new_tokens] int32, pad id after the end.
  completion_logprobs: [rows, max_new_tokens] float32, nats: the temperature-1
    log-softmax of each sampled token under the model (logp_old), 0 where masked.
  completion_mask: [rows, max_new_tokens] int32, 1 up to and including EOS (or the token
    that completes a stop string).
  texts: decoded completions (special tokens and stop strings removed).
  stop_reasons: "eos", "stop" or "length" per row.
  """
  prompt_ids: np.ndarray
  prompt_mask: np.ndarray
  completion_ids: np.ndarray
  completion_logprobs: np.ndarray
  completion_mask: np.ndarray
  texts: list[str]
  stop_reasons: list[str]


@dataclasses.dataclass
class GenerateTiming:
  """Wall time of the last generate call's device work, seconds (compilation included)."""
  prefill_seconds: float
  decode_seconds: float
  decode_steps: int  # tokens decoded per row, the first one (from the prefill) included


class Sampler:
  """Generates completions from a Decoder with a KV cache, jitted and optionally sharded.

  model: an amrsd.models.Decoder; its current weights are read at every `generate` call.
  tokenizer: a transformers tokenizer (chat template, decoding).
  mesh: optional mesh with axes ("data", "fsdp", ...); rows are sharded over
    ("data", "fsdp") and parameters follow their `out_sharding` annotations.
  prompt_buckets: increasing prompt widths; the largest is the longest prompt accepted.
  decode_weights: auto | split | stacked, how the decode loop reads the block weights
    (amrsd/sampling/decode.py): auto splits them per layer except on TPUs.
  """

  def __init__(self, model, tokenizer, *, mesh: jax.sharding.Mesh | None = None,
               prompt_buckets: Sequence[int] = DEFAULT_PROMPT_BUCKETS,
               decode_weights: str = "auto"):
    buckets = tuple(int(b) for b in prompt_buckets)
    if not buckets or any(b <= 0 for b in buckets) or list(buckets) != sorted(set(buckets)):
      raise ValueError(f"Sampler: prompt_buckets={prompt_buckets!r} must be a non-empty, "
                       "strictly increasing sequence of positive widths")
    self.model = model
    self.tokenizer = tokenizer
    self.mesh = mesh
    self.prompt_buckets = buckets
    self.split_weights = decode_lib.choose_weights(decode_weights)
    self.compile_count = 0
    self.last_timing: GenerateTiming | None = None
    self._graphdef, _ = nnx.split(model)
    config = model.config
    eos = config.eos_token_id if config.eos_token_id is not None else tokenizer.eos_token_id
    self.eos_ids = tuple(eos) if isinstance(eos, (tuple, list)) else (int(eos),)
    pad = config.pad_token_id if config.pad_token_id is not None else tokenizer.pad_token_id
    self.pad_id = int(pad if pad is not None else self.eos_ids[0])
    self._batch_shards = 1
    batch_sharding = None
    if mesh is not None:
      missing = [a for a in BATCH_AXES if a not in mesh.axis_names]
      if missing:
        raise ValueError(f"Sampler: mesh axes {mesh.axis_names} lack {missing}; build the "
                         f"mesh with axes {BATCH_AXES + ('tensor',)}")
      self._batch_shards = int(np.prod([mesh.shape[a] for a in BATCH_AXES]))
      batch_sharding = functools.partial(_constrain_batch, mesh)
    self._block, self._blocks = sharding.row_block(mesh)
    self._prefill = jax.jit(self._counted(functools.partial(
        decode_lib.prefill, self._graphdef, batch_sharding=batch_sharding)),
        static_argnames=("n", "budget"))
    self._decode = jax.jit(self._counted(functools.partial(
        decode_lib.decode, self._graphdef, eos_ids=self.eos_ids, pad_id=self.pad_id)),
        static_argnames=("mode", "budget", "prompt_width"), donate_argnames=("cache",))
    self._extend = jax.jit(self._counted(functools.partial(
        decode_lib.extend, self._graphdef, batch_sharding=batch_sharding)),
        donate_argnames=("cache",))

  def generate(self, prompts, *, max_new_tokens: int, temperature: float = 1.0,
               top_p: float = 1.0, top_k: int = 0, n: int = 1, seed=0,
               stop: Sequence[str] | str | None = None,
               truncate: str | None = None) -> SampleResult:
    """Samples n completions for each prompt.

    prompts: a list whose items are chat message lists ([{"role", "content"}, ...]; the
      chat template is applied with add_generation_prompt), strings (tokenized as given,
      no special tokens added) or token-id lists.
    temperature: 0 for greedy. top_p in (0, 1], top_k >= 0 (0 = off).
    seed: an int or a JAX PRNG key. stop: stop strings (see the module docstring).
    truncate: None (a prompt longer than the largest bucket is an error) or "left"
      (keep its last tokens).

    With several processes (jax.distributed) generate is a collective: every process
    calls it with the same settings and its own prompts (possibly none), which form one
    global batch in process-block order (amrsd.sharding.row_block); each gets its own rows
    back, sampled exactly as one process holding the whole batch would sample them.
    """
    _check_settings(max_new_tokens, temperature, top_p, top_k, n, truncate)
    stops = _check_stop(stop)
    key = _as_key(seed)
    token_lists = [self._encode(p, i)
                   for i, p in enumerate(_check_prompts(prompts, allow_empty=self._blocks > 1))]
    count = len(token_lists)
    longest = max(map(len, token_lists), default=0)
    offset, total, most, longest = self._agree_rows(count, longest)
    width = self._prompt_bucket(token_lists, longest, truncate)
    budget = max(MIN_DECODE_BUDGET, _next_power_of_two(max_new_tokens))
    limit = self.model.config.max_position_embeddings
    if width + budget > limit:
      raise ValueError(f"Sampler.generate: prompt bucket {width} + decode budget {budget} "
                       f"exceeds the model's max_position_embeddings={limit}; lower "
                       "max_new_tokens or the prompt length")
    batch = self._row_bucket(most)
    ids = np.full((batch, width), self.pad_id, np.int32)
    mask = np.zeros((batch, width), np.int32)
    for row, tokens in enumerate(token_lists):
      tokens = tokens[len(tokens) - width:] if len(tokens) > width else tokens
      ids[row, width - len(tokens):] = tokens
      mask[row, width - len(tokens):] = 1
    active = np.repeat(np.arange(batch) < count, n)
    # A real row's id is its global index (prompt-major), whatever the padding and the
    # process; padding rows take ids past the real ones.
    prompt_index = np.arange(batch) + np.where(np.arange(batch) < count, offset,
                                               total + self._block * batch)
    row_ids = (prompt_index[:, None] * n + np.arange(n)).reshape(-1).astype(np.int32)

    if total:
      state = self._current_state()
      put = self._put_batch
      start = time.perf_counter()
      cache, logits, lengths = self._prefill(state, put(ids), put(mask), n=n, budget=budget)
      jax.block_until_ready(logits)
      prefilled = time.perf_counter()
      mode = decode_lib.DecodeMode(greedy=temperature == 0,
                                   filtered=temperature > 0 and (top_k > 0 or top_p < 1),
                                   split_weights=self.split_weights)
      tokens, logprobs, out_mask, steps, _ = self._decode(
          state, cache, logits, lengths, put(active), put(row_ids), key,
          jnp.float32(temperature if temperature > 0 else 1.0), jnp.float32(top_p),
          jnp.int32(top_k), jnp.int32(max_new_tokens), mode=mode, budget=budget)
      tokens, logprobs, out_mask = (sharding.local_rows(a)[:count * n, :max_new_tokens]
                                    for a in (tokens, logprobs, out_mask))
      self.last_timing = GenerateTiming(prefilled - start, time.perf_counter() - prefilled,
                                        int(steps))
    else:  # no process has a prompt: nothing to run
      tokens = np.zeros((0, max_new_tokens), np.int32)
      logprobs, out_mask = tokens.astype(np.float32), tokens.copy()
    texts, reasons = self._finish_rows(tokens, logprobs, out_mask, stops)
    return SampleResult(prompt_ids=np.repeat(ids[:count], n, axis=0),
                        prompt_mask=np.repeat(mask[:count], n, axis=0),
                        completion_ids=tokens, completion_logprobs=logprobs,
                        completion_mask=out_mask, texts=texts, stop_reasons=reasons)

  def session(self, prompts, *, max_tokens: int, seed=0, share_prefill: bool = True):
    """Multi-turn episodes on one KV cache (amrsd/sampling/session.py): turns and
    observations appended in place, never re-prefilled. max_tokens: cache slots after
    the prompt for all turns and observations. share_prefill: run each distinct prompt
    once and copy its cache row to every episode that opens with it (G episodes of one
    record cost one row of prefill); False runs every row (the same samples)."""
    from amrsd.sampling.session import Session  # it builds on this module
    return Session(self, prompts, max_tokens=max_tokens, seed=seed,
                   share_prefill=share_prefill)

  def _agree_rows(self, count, longest):
    """(offset of this process's first prompt in the global batch, global prompt count,
    largest per-process count, longest prompt anywhere). A collective with several
    processes: every one calls generate together, each with its own prompts."""
    if self._blocks == 1:
      return 0, count, count, longest
    table = distributed.gather(np.array([self._block, count, longest]))
    counts = table[np.argsort(table[:, 0]), 1]
    return (int(counts[:self._block].sum()), int(counts.sum()), int(counts.max()),
            int(table[:, 2].max()))

  def _counted(self, fn):
    """Wraps fn so that each trace (one per compiled program) bumps compile_count."""
    @functools.wraps(fn)
    def traced(*args, **kwargs):
      self.compile_count += 1
      return fn(*args, **kwargs)
    return traced

  def _current_state(self):
    state = nnx.state(self.model)
    # A no-op for parameters already placed by models.load(..., mesh=mesh).
    return state if self.mesh is None else sharding.place_state(state, self.mesh)

  def _put_batch(self, array):
    return sharding.put_batch(self.mesh, {"rows": array})["rows"]

  def _encode(self, prompt, index):
    if isinstance(prompt, str):
      tokens = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    elif isinstance(prompt, (list, tuple)) and prompt and all(isinstance(m, dict) for m in prompt):
      text = self.tokenizer.apply_chat_template(list(prompt), add_generation_prompt=True,
                                                tokenize=False)
      tokens = self.tokenizer(text, add_special_tokens=False)["input_ids"]
    else:
      array = np.asarray(prompt)
      if array.ndim != 1 or not (np.issubdtype(array.dtype, np.integer) or array.size == 0):
        raise ValueError(f"Sampler.generate: prompts[{index}] is neither a string, a chat "
                         "message list ([{'role': ..., 'content': ...}]) nor a list of token "
                         f"ids (got {type(prompt).__name__})")
      vocab = self.model.config.vocab_size
      if array.size and (array.min() < 0 or array.max() >= vocab):
        raise ValueError(f"Sampler.generate: prompts[{index}] has token ids outside "
                         f"[0, {vocab})")
      tokens = array.tolist()
    if not tokens:
      raise ValueError(f"Sampler.generate: prompts[{index}] is empty (no tokens)")
    return tokens

  def _prompt_bucket(self, token_lists, longest, truncate):
    """The prompt width: the smallest bucket holding the longest prompt of every process."""
    for width in self.prompt_buckets:
      if longest <= width:
        return width
    if truncate == "left":
      return self.prompt_buckets[-1]
    local = max(map(len, token_lists), default=0)
    where = (f"prompts[{max(range(len(token_lists)), key=lambda i: len(token_lists[i]))}]"
             if local == longest else f"a prompt of another process")
    raise ValueError(f"Sampler.generate: {where} has {longest} tokens, more than the "
                     f"largest prompt bucket ({self.prompt_buckets[-1]}); pass truncate='left' "
                     "to keep its last tokens, or build the Sampler with larger prompt_buckets")

  def _row_bucket(self, count):
    """This process's rows: its batch shards times a ladder size (amrsd.buckets), at least
    count, so rows split evenly over the batch shards and prefill pads little."""
    shards = self._batch_shards // self._blocks
    return shards * buckets.fit(-(-count // shards))

  def _finish_rows(self, tokens, logprobs, mask, stops):
    """Applies stop strings in place; returns (texts, stop_reasons)."""
    texts, reasons = [], []
    eos = set(self.eos_ids)
    for row in range(tokens.shape[0]):
      length = int(mask[row].sum())
      valid = tokens[row, :length].tolist()
      reason = "eos" if valid and valid[-1] in eos else "length"
      text = self.tokenizer.decode(valid, skip_special_tokens=True)
      match = _first_match(text, stops)
      if match is not None:
        end = self._tokens_until(valid, stops)
        tokens[row, end:] = self.pad_id
        logprobs[row, end:] = 0.0
        mask[row, end:] = 0
        text, reason = text[:match], "stop"
      texts.append(text)
      reasons.append(reason)
    return texts, reasons

  def _tokens_until(self, valid, stops):
    """Fewest leading tokens whose text contains a stop string (binary search)."""
    low, high = 1, len(valid)
    while low < high:
      middle = (low + high) // 2
      text = self.tokenizer.decode(valid[:middle], skip_special_tokens=True)
      if _first_match(text, stops) is None:
        low = middle + 1
      else:
        high = middle
    return low


def _first_match(text, stops):
  """Start of the earliest stop string in text, or None."""
  starts = [i for i in (text.find(s) for s in stops) if i >= 0]
  return min(starts) if starts else None


def _next_power_of_two(value):
  return 1 << max(0, int(value) - 1).bit_length()


def _constrain_batch(mesh, array, axis):
  spec = [None] * array.ndim
  spec[axis] = BATCH_AXES
  return jax.lax.with_sharding_constraint(array, NamedSharding(mesh, PartitionSpec(*spec)))


def _as_key(seed):
  if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
    return jax.random.key(int(seed))
  if isinstance(seed, jax.Array):
    if jnp.issubdtype(seed.dtype, jax.dtypes.prng_key):
      return seed
    if seed.dtype == jnp.uint32 and seed.shape == (2,):
      return jax.random.wrap_key_data(seed)
  raise ValueError(f"Sampler.generate: seed must be an int or a JAX PRNG key (a scalar "
                   f"from jax.random.key, or uint32[2] from jax.random.PRNGKey); got {seed!r}")


def _check_prompts(prompts, allow_empty):
  if isinstance(prompts, (str, dict)) or not isinstance(prompts, (list, tuple)):
    raise ValueError("Sampler.generate: prompts must be a list of prompts (strings, chat "
                     f"message lists or token-id lists), got {type(prompts).__name__}")
  if not prompts and not allow_empty:
    raise ValueError("Sampler.generate: prompts is empty; pass at least one prompt")
  return prompts


def _check_settings(max_new_tokens, temperature, top_p, top_k, n, truncate):
  where = "Sampler.generate"
  if not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens <= 0:
    raise ValueError(f"{where}: max_new_tokens must be a positive int, got {max_new_tokens!r}")
  if not temperature >= 0:
    raise ValueError(f"{where}: temperature must be >= 0 (0 = greedy), got {temperature!r}")
  if not 0 < top_p <= 1:
    raise ValueError(f"{where}: top_p must be in (0, 1] (1 = off), got {top_p!r}")
  if not isinstance(top_k, (int, np.integer)) or top_k < 0:
    raise ValueError(f"{where}: top_k must be an int >= 0 (0 = off), got {top_k!r}")
  if not isinstance(n, (int, np.integer)) or n < 1:
    raise ValueError(f"{where}: n (samples per prompt) must be an int >= 1, got {n!r}")
  if truncate not in (None, "left"):
    raise ValueError(f"{where}: truncate must be None or 'left', got {truncate!r}")


def _check_stop(stop):
  if stop is None:
    return ()
  stops = (stop,) if isinstance(stop, str) else tuple(stop)
  if not all(isinstance(s, str) and s for s in stops):
    raise ValueError(f"Sampler.generate: stop must be a string or a list of non-empty "
                     f"strings, got {stop!r}")
  return stops
