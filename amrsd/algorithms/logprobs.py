"""Log-probabilities of response tokens, never materializing [B, T, V] float32 logits.

Row layout (docs/algorithms.md section 4): a row is a left-padded context of fixed length
P followed by R response tokens, `ids = [pad.. context | y_0 .. y_{R-1}]`, T = P + R.
The log-prob of response token t is read from the logits at position P + t - 1.
Vocabulary-sized work (unembedding, log-softmax, entropy, top-k) runs over chunks of
`chunk_size` response tokens under `lax.map`, each chunk rematerialized in the
backward pass, so at most one [chunk_size, V] float32 buffer is alive at a time.
"""

import functools

import jax
import jax.numpy as jnp
from flax import nnx


def token_logprobs(model, ids, mask, start: int, *, chunk_size: int = 512,
                   with_entropy: bool = True):
  """Log-probs (and entropies) of the response tokens under `model`.

  model: a Decoder, or a (graphdef, state) pair from nnx.split.
  ids: [B, T] int32, mask: [B, T] (1 real, 0 pad); columns [start, T) are the response.
  start: P, the fixed context length (static int, 1 <= P < T).
  Returns (logp [B, R] float32 nats, entropy [B, R] float32 nats, or None without
  with_entropy) with R = T - P. Differentiable with respect to the parameters.
  """
  model = as_module(model)
  hidden = response_hidden(model, ids, mask, start)
  return sampled_logprobs(model.unembed, hidden, ids[:, start:], chunk_size=chunk_size,
                          with_entropy=with_entropy)


def as_module(model):
  """A Decoder from a Decoder or a (graphdef, state) pair."""
  if isinstance(model, tuple):
    graphdef, state = model
    return nnx.merge(graphdef, state)
  return model


def response_hidden(model, ids, mask, start: int):
  """Final hidden states [B, R, D] that predict the response tokens ids[:, start:]."""
  _, T = ids.shape
  if not 1 <= start < T:
    raise ValueError(f"response start P={start} must satisfy 1 <= P < T={T} for ids of "
                     f"shape {ids.shape}: rows are [context (P) | response (T - P)]")
  hidden, _ = model.hidden_states(ids, mask)
  return hidden[:, start - 1:T - 1]


def sampled_logprobs(unembed, hidden, targets, *, chunk_size: int = 512,
                     with_entropy: bool = True):
  """Log-softmax at `targets` (and entropy) from hidden states, chunked over tokens.

  unembed: hidden [..., D] -> float32 logits [..., V]. hidden: [B, R, D].
  targets: [B, R] int32. Returns (logp [B, R], entropy [B, R] or None), float32 nats.
  The entropy carries no gradient (it is a metric).
  """
  def chunk(h, y):
    logits = unembed(h)
    lse = jax.nn.logsumexp(logits, axis=-1)
    logp = jnp.take_along_axis(logits, y[:, None], axis=-1)[:, 0] - lse
    if not with_entropy:
      return logp, jnp.zeros_like(logp)
    probs = jax.nn.softmax(jax.lax.stop_gradient(logits), axis=-1)
    entropy = jax.lax.stop_gradient(lse) - jnp.sum(probs * jax.lax.stop_gradient(logits), -1)
    return logp, entropy

  logp, entropy = map_token_chunks(chunk, chunk_size, hidden, targets)
  return logp, (entropy if with_entropy else None)


def topk_logprobs(student_unembed, teacher_unembed, student_hidden, teacher_hidden, targets,
                  k: int, *, chunk_size: int = 512):
  """What SDPO / OPSD need, chunked: the student's top-k and the teacher at the same ids.

  student_unembed, teacher_unembed: hidden [..., D] -> float32 logits [..., V] (the
  same function, or the teacher's own weights, e.g. an EMA copy).
  student_hidden, teacher_hidden: [B, R, D], aligned on the same response tokens;
  the teacher side is treated as a constant (stop-gradient). targets: [B, R] int32.
  Returns (logp [B, R], entropy [B, R], student_topk [B, R, k], teacher_topk [B, R, k]):
  the student's log-prob of the sampled token and entropy, the student's log-softmax
  at its own top-k ids (differentiable), and the teacher's log-softmax at those ids.
  A k above the vocabulary size V means the whole vocabulary (k = V).
  """
  def chunk(hs, ht, y):
    s_logits = student_unembed(hs)
    s_logp_all = jax.nn.log_softmax(s_logits, axis=-1)
    _, top_ids = jax.lax.top_k(jax.lax.stop_gradient(s_logits), min(k, s_logits.shape[-1]))
    s_top = jnp.take_along_axis(s_logp_all, top_ids, axis=-1)
    t_logp_all = jax.nn.log_softmax(teacher_unembed(jax.lax.stop_gradient(ht)), axis=-1)
    t_top = jax.lax.stop_gradient(jnp.take_along_axis(t_logp_all, top_ids, axis=-1))
    logp = jnp.take_along_axis(s_logp_all, y[:, None], axis=-1)[:, 0]
    sg = jax.lax.stop_gradient(s_logp_all)
    entropy = -jnp.sum(jnp.exp(sg) * sg, axis=-1)
    return logp, entropy, s_top, t_top

  return map_token_chunks(chunk, chunk_size, student_hidden, teacher_hidden, targets)


def map_token_chunks(fn, chunk_size: int, *arrays):
  """Applies fn to chunks of tokens of arrays shaped [B, R, ...]; outputs [B, R, ...].

  The token axes are flattened and padded to a multiple of the chunk; fn sees
  [chunk, ...] slices and is rematerialized in the backward pass (jax.checkpoint),
  so the backward keeps only fn's inputs per chunk, not its vocabulary-sized temporaries.
  """
  B, R = arrays[0].shape[:2]
  n = B * R
  size = max(1, min(chunk_size, n))
  num_chunks = -(-n // size)
  padded = num_chunks * size

  def split(a):
    flat = a.reshape((n,) + a.shape[2:])
    flat = jnp.pad(flat, [(0, padded - n)] + [(0, 0)] * (flat.ndim - 1))
    return flat.reshape((num_chunks, size) + a.shape[2:])

  outs = jax.lax.map(lambda xs: jax.checkpoint(fn)(*xs), tuple(split(a) for a in arrays))
  return tuple(o.reshape((padded,) + o.shape[2:])[:n].reshape((B, R) + o.shape[2:])
               for o in outs)


@functools.partial(jax.jit, static_argnames=("graphdef", "start", "chunk_size", "with_entropy"))
def jitted_token_logprobs(graphdef, state, ids, mask, *, start: int, chunk_size: int = 512,
                          with_entropy: bool = True):
  """token_logprobs((graphdef, state), ...) compiled once per (graphdef, shapes, start)."""
  return token_logprobs((graphdef, state), ids, mask, start, chunk_size=chunk_size,
                        with_entropy=with_entropy)
