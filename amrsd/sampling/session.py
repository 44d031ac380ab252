"""Multi-turn sampling over one KV cache: each turn continues where the last one stopped.

    session = sampler.session(prompts, max_tokens=1024, seed=0)
    turn = session.generate(max_new_tokens=128)      # one turn for every live row
    session.extend([obs_0, None, obs_2])             # observations; None ends that episode
    turn = session.generate(max_new_tokens=128)      # after the observations, no re-prefill
    out = session.trajectories()                     # prompt + all that follows, policy mask

A row's cache holds exactly its real tokens in order (prompt, sampled tokens up to the end
of each turn, observations); padding slots are masked out and RoPE positions count real
tokens only, so each policy token's log-prob equals what one forward over the final
sequence gives it. Slots are spent by the whole batch at once: a turn takes as many as
its longest row, an observation as many as its longest chunk (rounded up to a ladder size,
amrsd.buckets, so chunks compile a few programs); `room` says how many are left.
Stop strings are not applied (a turn ends at EOS or its token limit). One process only.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from amrsd import buckets
from amrsd.sampling import decode as decode_lib


@dataclasses.dataclass
class Turn:
  """One turn's tokens per row ([rows, max_new_tokens], as SampleResult's completion_*);
  rows whose episode had ended have an empty mask, text "" and stop reason None."""
  completion_ids: np.ndarray
  completion_logprobs: np.ndarray
  completion_mask: np.ndarray
  texts: list[str]
  stop_reasons: list


@dataclasses.dataclass
class Trajectories:
  """Whole episodes. prompt_ids, prompt_mask: [rows, P], left-padded.
  completion_ids [rows, L] int32: every token after the prompt, the policy's and the
    observations', in order; pad id after the end. completion_mask: 1 on those tokens.
  policy_mask [rows, L] int32: 1 on the tokens the policy sampled.
  completion_logprobs [rows, L] float32: their temperature-1 log-probs, 0 elsewhere."""
  prompt_ids: np.ndarray
  prompt_mask: np.ndarray
  completion_ids: np.ndarray
  completion_mask: np.ndarray
  policy_mask: np.ndarray
  completion_logprobs: np.ndarray


class Session:
  """Episodes of one batch of prompts on one sampler; built by Sampler.session."""

  def __init__(self, sampler, prompts, *, max_tokens: int, seed=0, share_prefill=True):
    from amrsd.sampling import sampler as sampler_lib
    if sampler._blocks > 1:
      raise ValueError("Sampler.session: multi-turn sessions run on one process; with "
                       "several, give each its own episodes and a Sampler without a "
                       "multi-process mesh")
    if int(max_tokens) <= 0:
      raise ValueError(f"Sampler.session: max_tokens={max_tokens} must be positive")
    self._sampler, self._lib = sampler, sampler_lib
    token_lists = [sampler._encode(p, i)
                   for i, p in enumerate(sampler_lib._check_prompts(prompts, False))]
    self.count = len(token_lists)
    self.width = sampler._prompt_bucket(token_lists, max(map(len, token_lists)), None)
    self.slots = self.width + buckets.fit(max_tokens)
    limit = sampler.model.config.max_position_embeddings
    if self.slots > limit:
      raise ValueError(f"Sampler.session: prompt bucket {self.width} + max_tokens "
                       f"{max_tokens} (rounded up) exceeds the model's "
                       f"max_position_embeddings={limit}")
    batch = sampler._row_bucket(self.count)
    self.prompt_ids, self.prompt_mask = self._left_pad(token_lists, self.count)
    # Per episode, the row of its prompt among the distinct ones (in first-seen order).
    distinct = {}
    source = [distinct.setdefault(tuple(t), len(distinct)) for t in token_lists]
    shared = share_prefill and len(distinct) < self.count
    if shared:
      ids, mask = self._left_pad(list(distinct), sampler._row_bucket(len(distinct)))
    else:
      ids, mask = self._left_pad(token_lists, batch)
    # Per batch row: the episode it plays (-1: padding) and whether that episode goes on.
    self.episode = np.where(np.arange(batch) < self.count, np.arange(batch), -1)
    self.live = self.episode >= 0
    self.key = sampler_lib._as_key(seed)
    self.turns = 0
    # Per row, everything after the prompt: token ids, policy flags, log-probs.
    self.tokens = [[] for _ in range(self.count)]
    self.policy = [[] for _ in range(self.count)]
    self.logprobs = [[] for _ in range(self.count)]
    self._ready = True  # logits hold the next token of every live row
    self.cache, self.logits, self.lengths = sampler._prefill(
        sampler._current_state(), sampler._put_batch(ids), sampler._put_batch(mask), n=1,
        budget=self.slots - self.width)
    if shared:  # padding rows copy row 0 and stay ended
      self._take_rows(source + [0] * (batch - self.count))
    self.index = self.width  # the next cache slot, as cache.index

  def _left_pad(self, token_lists, rows):
    """[rows, width] ids and mask of the token lists, left-padded; extra rows all padding."""
    pad_id = self._sampler.pad_id
    ids = np.full((rows, self.width), pad_id, np.int32)
    mask = np.zeros((rows, self.width), np.int32)
    for row, tokens in enumerate(token_lists):
      ids[row, self.width - len(tokens):], mask[row, self.width - len(tokens):] = tokens, 1
    return ids, mask

  @property
  def room(self) -> int:
    """Cache slots left for turns and observations."""
    return self.slots - self.index

  @property
  def done(self) -> bool:
    return not self.live.any()

  @property
  def batch_rows(self) -> int:
    """Rows the next turn computes: a ladder size (amrsd.buckets) of the live episodes."""
    return len(self.live)

  def generate(self, *, max_new_tokens: int, temperature: float = 1.0, top_p: float = 1.0,
               top_k: int = 0) -> Turn:
    """Samples one turn for every live row (see Sampler.generate for the settings)."""
    s = self._sampler
    self._lib._check_settings(max_new_tokens, temperature, top_p, top_k, 1, None)
    if self.done:
      raise ValueError("Session.generate: every episode has ended")
    if not self._ready:
      raise ValueError("Session.generate: call extend (observations, or [] per row to go "
                       "on) between two turns: the last turn's final tokens are not in the "
                       "cache yet")
    if max_new_tokens - 1 > self.room:  # a turn writes all its tokens but the last
      raise ValueError(f"Session.generate: {self.room} cache slots left, a turn of up to "
                       f"{max_new_tokens} tokens needs {max_new_tokens - 1}; end the "
                       "episodes or open the session with a larger max_tokens")
    budget = max(self._lib.MIN_DECODE_BUDGET, self._lib._next_power_of_two(max_new_tokens))
    mode = decode_lib.DecodeMode(greedy=temperature == 0,
                                 filtered=temperature > 0 and (top_k > 0 or top_p < 1),
                                 split_weights=s.split_weights)
    self._free_ended_rows()
    # A row draws from its episode's key (decode's row_ids), so freeing rows changes no sample.
    row_ids = np.maximum(self.episode, 0).astype(np.int32)
    tokens, logprobs, mask, steps, self.cache = s._decode(
        s._current_state(), self.cache, self.logits, self.lengths, s._put_batch(self.live),
        s._put_batch(row_ids), jax.random.fold_in(self.key, self.turns),
        jnp.float32(temperature if temperature > 0 else 1.0), jnp.float32(top_p),
        jnp.int32(top_k), jnp.int32(max_new_tokens), mode=mode, budget=budget,
        prompt_width=self.width)
    self.index += int(steps) - 1
    # Back to episode order; an ended episode's row is all padding.
    live = np.zeros(self.count, bool)
    by_episode = []
    for a in (tokens, logprobs, mask):
      a = np.array(a)[:, :max_new_tokens]
      out = np.zeros((self.count, max_new_tokens), a.dtype)
      for row, episode in enumerate(self.episode):
        if self.live[row]:
          out[episode], live[episode] = a[row], True
      by_episode.append(out)
    tokens, logprobs, mask = by_episode
    texts, reasons = s._finish_rows(tokens, logprobs, mask, ())
    for row in range(self.count):
      if not live[row]:
        texts[row], reasons[row] = "", None
        continue
      length = int(mask[row].sum())
      self.tokens[row] += tokens[row, :length].tolist()
      self.policy[row] += [1] * length
      self.logprobs[row] += logprobs[row, :length].tolist()
    self.turns += 1
    self._ready = False
    return Turn(tokens, logprobs, mask, texts, reasons)

  def extend(self, chunks) -> None:
    """Appends each live row's observation and readies the next turn.

    chunks: one item per episode: token ids, or a string (tokenized without special tokens),
    or [] (nothing to add: the next turn goes on after the last), or None (the episode
    ends; the row samples nothing more).
    """
    s = self._sampler
    if len(chunks) != self.count:
      raise ValueError(f"Session.extend: {len(chunks)} chunks for {self.count} rows")
    row_of = {int(e): row for row, e in enumerate(self.episode) if self.live[row]}
    filled = np.asarray(jnp.sum(self.cache.mask, axis=1))
    pieces = {}
    for episode, chunk in enumerate(chunks):
      row = row_of.get(episode)
      if row is None:  # ended before
        continue
      if chunk is None:
        self.live[row] = False
        continue
      if not isinstance(chunk, str) and len(chunk) and isinstance(chunk[0], dict):
        raise ValueError(f"Session.extend: chunks[{episode}] is a message list; render it to "
                         "text or token ids first (the chat template's turn markers)")
      added = s._encode(chunk, episode) if len(chunk) else []
      # The last turn's final token (sampled, never fed) goes first.
      in_cache = int(filled[row]) - int(self.prompt_mask[episode].sum())
      pieces[row] = self.tokens[episode][in_cache:] + added
      if not pieces[row]:
        raise ValueError(f"Session.extend: chunks[{episode}] adds nothing and the row's "
                         "last token is already in the cache; give it an observation")
      self.tokens[episode] += added
      self.policy[episode] += [0] * len(added)
      self.logprobs[episode] += [0.0] * len(added)
    self._ready = True
    if not pieces:
      return
    width = buckets.fit(max(map(len, pieces.values())))
    if width > self.room:
      raise ValueError(f"Session.extend: {self.room} cache slots left, the observations "
                       f"need {width}; end the episodes or open the session with a larger "
                       "max_tokens")
    ids = np.full((len(self.live), width), s.pad_id, np.int32)
    mask = np.zeros((len(self.live), width), np.int32)
    for row, piece in pieces.items():
      ids[row, width - len(piece):], mask[row, width - len(piece):] = piece, 1
    self.cache, self.logits, self.lengths = s._extend(
        s._current_state(), self.cache, s._put_batch(ids), s._put_batch(mask))
    self.index += width

  def _free_ended_rows(self):
    """Once the live episodes fit a smaller row bucket, keeps only their rows of the
    cache, logits and lengths (a gather on the batch axis): turns stop computing rows
    of ended episodes. Extra rows of the new bucket repeat a live one, marked ended."""
    keep = np.flatnonzero(self.live)
    rows = self._sampler._row_bucket(len(keep))
    if rows >= len(self.live):
      return
    index = np.concatenate([keep, np.full(rows - len(keep), keep[0])])
    self._take_rows(index)
    self.episode = np.where(np.arange(rows) < len(keep), self.episode[index], -1)
    self.live = np.arange(rows) < len(keep)

  def _take_rows(self, index):
    """Rows `index` of the cache, logits and lengths (a gather on the batch axis)."""
    take = lambda a: a[jnp.asarray(index)]
    c = self.cache
    self.cache = type(c)(k=tuple(map(take, c.k)), v=tuple(map(take, c.v)), mask=take(c.mask),
                         index=c.index)
    self.logits, self.lengths = take(self.logits), take(self.lengths)

  def trajectories(self) -> Trajectories:
    """Every row's episode so far (the prompt, then its turns and observations)."""
    longest = max(1, max(map(len, self.tokens)))
    shape = (self.count, longest)
    ids, mask = np.full(shape, self._sampler.pad_id, np.int32), np.zeros(shape, np.int32)
    policy, logp = np.zeros(shape, np.int32), np.zeros(shape, np.float32)
    for row in range(self.count):
      n = len(self.tokens[row])
      ids[row, :n], mask[row, :n] = self.tokens[row], 1
      policy[row, :n], logp[row, :n] = self.policy[row], self.logprobs[row]
    return Trajectories(self.prompt_ids, self.prompt_mask, ids, mask, policy, logp)
