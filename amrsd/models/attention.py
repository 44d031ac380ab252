"""Causal grouped-query attention with left padding, in several implementations.

Every implementation computes, per row b, query slot t and key slot s,
  softmax_s(q_t . k_s / sqrt(hd))  over the keys with  s <= offset + t  and  key_mask[b, s],
and differs in what it keeps in memory and on which backend it runs:

  xla      the T x S scores in one piece (fast at short lengths, memory ~ T x S).
  chunked  query blocks x key blocks with an online softmax (plain JAX, any backend); the
           backward recomputes each block's scores (a custom VJP, as in FlashAttention-2), so
           neither pass holds more than one block's scores. Key blocks above the causal
           diagonal are skipped.
  cudnn    jax.nn.dot_product_attention(implementation="cudnn"): GPUs, bfloat16/float16
           only, self-attention without a cache (see `_cudnn`).
  splash   the Pallas splash-attention kernel: TPUs only, self-attention without a cache
           (see `_splash`).

A query row with no allowed key (a left-pad query) gets an average of some values: its
output is never read by a real token, and its value differs between implementations.
"""

import functools
import math

import jax
import jax.numpy as jnp

CHOICES = ("auto", "xla", "chunked", "cudnn", "splash")
# Finite, so that a fully masked row gives a uniform average instead of NaN.
MASKED = -1e30
# On CPU, `auto` switches from xla to chunked at this many query x key scores per head
# (2048 x 2048): above it, one layer's float32 scores of a 9-head SmolLM2 row pass 150 MB,
# and the blockwise loop costs little next to the matmuls of that many tokens. A short
# append to a long cache (a multi-turn observation: ~100 queries, ~5k keys) stays below
# it; chunked would pad its queries to a whole block and run ~3x slower.
CPU_CHUNKED_FROM = 2048 * 2048


def check_choice(name: str) -> str:
  if name not in CHOICES:
    raise ValueError(f"attention={name!r}: choose one of {', '.join(CHOICES)}")
  return name


def resolve(name: str, dtype, *, cached: bool, keys: int, queries: int) -> str:
  """The implementation that `name` means on this backend, for a forward of `queries`
  tokens over `keys` slots.

  auto: cudnn on GPUs in bfloat16/float16 (chunked in float32), splash on TPUs, xla on
  CPU below CPU_CHUNKED_FROM scores (queries x keys) and chunked from there. The kernels have no cache
  path: with a cache (prefill) they fall back to chunked. An explicit kernel on a backend
  without it is an error.
  """
  backend = jax.default_backend()
  half = jnp.dtype(dtype) in (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))
  if name == "auto":
    if backend == "gpu":
      name = "cudnn" if half else "chunked"
    elif backend == "tpu":
      name = "splash"
    else:
      name = "chunked" if queries * keys >= CPU_CHUNKED_FROM else "xla"
  elif name == "cudnn" and (backend != "gpu" or not half):
    raise ValueError(f"attention='cudnn' needs a GPU and bfloat16/float16 activations "
                     f"(backend {backend}, dtype {jnp.dtype(dtype).name})")
  elif name == "splash" and backend != "tpu":
    raise ValueError(f"attention='splash' needs a TPU (backend {backend})")
  if cached and name in ("cudnn", "splash"):
    return "chunked"
  return name


def attention(q, k, v, key_mask, offset, *, implementation: str, block: int = 512):
  """Attention output [B, T, H * hd] in q's dtype.

  q: [B, T, H, hd]. k: [B, K, S, hd]; v: [B, K, hd, S] (the KVCache layouts), H % K == 0.
  key_mask: [B, S] bool, True for real keys. offset: int32 scalar, the slot of query 0
  (0 without a cache). implementation: xla, chunked, cudnn or splash (see `resolve`).
  block: query and key block size of chunked (need not divide T or S).
  """
  B, T, H, hd = q.shape
  K = k.shape[1]
  if implementation == "xla":
    return _xla(q, k, v, key_mask, offset)
  if implementation == "chunked":
    qg = q.reshape(B, T, K, H // K, hd).transpose(0, 2, 3, 1, 4)
    out = _chunked(qg, k, v, key_mask, jnp.asarray(offset, jnp.int32), block)
    return out.transpose(0, 3, 1, 2, 4).reshape(B, T, H * hd)
  if implementation == "cudnn":
    return _cudnn(q, k, v, key_mask)
  if implementation == "splash":
    return _splash(q, k, v, key_mask)
  raise ValueError(f"attention implementation {implementation!r} is not one of "
                   "xla, chunked, cudnn, splash")


def _xla(q, k, v, key_mask, offset):
  B, T, H, hd = q.shape
  K, S = k.shape[1], k.shape[2]
  q = q.reshape(B, T, K, H // K, hd)
  scores = jnp.einsum("btkgd,bksd->bkgts", q, k,
                      preferred_element_type=jnp.float32) / math.sqrt(hd)
  allowed = _allowed(offset + jnp.arange(T), jnp.arange(S), key_mask)
  scores = jnp.where(allowed[:, None, None], scores, MASKED)
  probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
  out = jnp.einsum("bkgts,bkds->btkgd", probs, v)
  return out.reshape(B, T, H * hd)


def _allowed(query_slots, key_slots, key_mask):
  """[B, Tq, Sk] bool: causal over slots, and never a pad key."""
  return (key_slots[None, :] <= query_slots[:, None])[None] & key_mask[:, None, :]


# --- chunked: q [B, K, G, T, hd] grouped by KV head; blocks along T and S. ---

def _pad_to(x, axis, multiple, value=0):
  extra = -x.shape[axis] % multiple
  if not extra:
    return x
  widths = [(0, 0)] * x.ndim
  widths[axis] = (0, extra)
  return jnp.pad(x, widths, constant_values=value)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _chunked(q, k, v, key_mask, offset, block):
  return _chunked_forward(q, k, v, key_mask, offset, block)[0]


def _chunked_forward(q, k, v, key_mask, offset, block):
  """(output [B, K, G, T, hd] in q's dtype, logsumexp [B, K, G, T] float32)."""
  T, hd = q.shape[3], q.shape[4]
  qp, kp, vp = _pad_to(q, 3, block), _pad_to(k, 2, block), _pad_to(v, 3, block)
  maskp = _pad_to(key_mask, 1, block, False)
  q_blocks, k_blocks = qp.shape[3] // block, kp.shape[2] // block
  scale = 1.0 / math.sqrt(hd)

  def query_block(i):
    qi = jax.lax.dynamic_slice_in_dim(qp, i * block, block, axis=3)
    query_slots = offset + i * block + jnp.arange(block)

    def key_step(j, carry):
      m, l, acc = carry
      s, _, vj = _block_scores(qi, kp, vp, maskp, query_slots, j, block, scale)
      m_new = jnp.maximum(m, jnp.max(s, axis=-1))
      correction = jnp.exp(m - m_new)
      p = jnp.exp(s - m_new[..., None])
      l = l * correction + jnp.sum(p, axis=-1)
      acc = acc * correction[..., None] + jnp.einsum(
          "bkgqs,bkds->bkgqd", p.astype(vj.dtype), vj, preferred_element_type=jnp.float32)
      return m_new, l, acc

    stats = qi.shape[:4]
    init = (jnp.full(stats, -jnp.inf, jnp.float32), jnp.zeros(stats, jnp.float32),
            jnp.zeros(qi.shape, jnp.float32))
    # Key blocks that start after this query block's last slot are fully masked.
    last = jnp.minimum((offset + (i + 1) * block - 1) // block + 1, k_blocks)
    m, l, acc = jax.lax.fori_loop(0, last, key_step, init)
    return (acc / l[..., None]).astype(q.dtype), m + jnp.log(l)

  out, lse = jax.lax.map(query_block, jnp.arange(q_blocks))
  # [nq, B, K, G, block, ...] -> [B, K, G, nq * block, ...], cut to T.
  out = jnp.moveaxis(out, 0, 3).reshape(qp.shape)[:, :, :, :T]
  lse = jnp.moveaxis(lse, 0, 3).reshape(qp.shape[:4])[:, :, :, :T]
  return out, lse


def _block_scores(qi, kp, vp, maskp, query_slots, j, block, scale):
  """Masked float32 scores [B, K, G, bq, bk] of a query block against key block j."""
  kj = jax.lax.dynamic_slice_in_dim(kp, j * block, block, axis=2)
  vj = jax.lax.dynamic_slice_in_dim(vp, j * block, block, axis=3)
  mj = jax.lax.dynamic_slice_in_dim(maskp, j * block, block, axis=1)
  s = jnp.einsum("bkgqd,bksd->bkgqs", qi, kj, preferred_element_type=jnp.float32) * scale
  allowed = _allowed(query_slots, j * block + jnp.arange(block), mj)
  return jnp.where(allowed[:, None, None], s, MASKED), kj, vj


def _chunked_fwd(q, k, v, key_mask, offset, block):
  out, lse = _chunked_forward(q, k, v, key_mask, offset, block)
  return out, (q, k, v, key_mask, offset, out, lse)


def _chunked_bwd(block, residuals, d_out):
  """FlashAttention-2's backward: per key block, loop over the query blocks that see it."""
  q, k, v, key_mask, offset, out, lse = residuals
  T, S, hd = q.shape[3], k.shape[2], q.shape[4]
  scale = 1.0 / math.sqrt(hd)
  # delta_t = sum_d dO_t O_t, the softmax backward's row term.
  delta = jnp.sum(d_out.astype(jnp.float32) * out.astype(jnp.float32), axis=-1)
  qp, kp, vp = _pad_to(q, 3, block), _pad_to(k, 2, block), _pad_to(v, 3, block)
  maskp = _pad_to(key_mask, 1, block, False)
  dop = _pad_to(d_out, 3, block)
  lsep, deltap = _pad_to(lse, 3, block), _pad_to(delta, 3, block)
  q_blocks, k_blocks = qp.shape[3] // block, kp.shape[2] // block

  def key_block(dq, j):
    def query_step(i, carry):
      dq, dk, dv = carry
      qi = jax.lax.dynamic_slice_in_dim(qp, i * block, block, axis=3)
      doi = jax.lax.dynamic_slice_in_dim(dop, i * block, block, axis=3)
      lse_i = jax.lax.dynamic_slice_in_dim(lsep, i * block, block, axis=3)
      delta_i = jax.lax.dynamic_slice_in_dim(deltap, i * block, block, axis=3)
      query_slots = offset + i * block + jnp.arange(block)
      s, kj, vj = _block_scores(qi, kp, vp, maskp, query_slots, j, block, scale)
      p = jnp.where(s > MASKED, jnp.exp(s - lse_i[..., None]), 0.0)
      f32 = dict(preferred_element_type=jnp.float32)
      dv = dv + jnp.einsum("bkgqs,bkgqd->bkds", p.astype(doi.dtype), doi, **f32)
      dp = jnp.einsum("bkgqd,bkds->bkgqs", doi, vj, **f32)
      ds = p * (dp - delta_i[..., None]) * scale
      dk = dk + jnp.einsum("bkgqs,bkgqd->bksd", ds.astype(qi.dtype), qi, **f32)
      dq_i = jnp.einsum("bkgqs,bksd->bkgqd", ds.astype(kj.dtype), kj, **f32)
      dq = jax.lax.dynamic_update_slice_in_dim(
          dq, jax.lax.dynamic_slice_in_dim(dq, i * block, block, axis=3) + dq_i,
          i * block, axis=3)
      return dq, dk, dv

    B, K, _, D = kp.shape
    init = (dq, jnp.zeros((B, K, block, D), jnp.float32),
            jnp.zeros((B, K, D, block), jnp.float32))
    # Query blocks that end before this key block's first slot see none of it.
    first = jnp.clip((j * block - offset) // block, 0, q_blocks)
    dq, dk, dv = jax.lax.fori_loop(first, q_blocks, query_step, init)
    return dq, (dk, dv)

  dq, (dk, dv) = jax.lax.scan(key_block, jnp.zeros(qp.shape, jnp.float32),
                              jnp.arange(k_blocks))
  B, K, _, D = kp.shape
  dk = jnp.moveaxis(dk, 0, 2).reshape(B, K, -1, D)[:, :, :S]
  dv = jnp.moveaxis(dv, 0, 3).reshape(B, K, D, -1)[:, :, :, :S]
  return (dq[:, :, :, :T].astype(q.dtype), dk.astype(k.dtype), dv.astype(v.dtype),
          None, None)


_chunked.defvjp(_chunked_fwd, _chunked_bwd)


# --- kernels ---

def _cudnn(q, k, v, key_mask):
  """cuDNN fused attention, self-attention only (S == T, no cache).

  cuDNN masks by sequence lengths (a row's first n keys are real), not by an arbitrary
  mask: each row is rotated so that its real tokens come first, attended with is_causal
  and its length, and rotated back. RoPE positions were applied before, so the rotation
  changes nothing else. Limits: bfloat16/float16, head_dim <= 128 (a multiple of 8), the
  cuDNN version's shape rules; a row's real tokens must be contiguous (padding on the
  left and after the end, as the trainer's rows are): a mask with holes inside is
  attended as if the real tokens were contiguous.
  """
  B, T, H, hd = q.shape
  lengths = jnp.sum(key_mask, axis=1, dtype=jnp.int32)
  shift = jnp.argmax(key_mask, axis=1)[:, None]  # left-pad count per row
  take = (jnp.arange(T)[None, :] + shift) % T  # rotated slot -> original slot
  give = (jnp.arange(T)[None, :] - shift) % T  # original slot -> rotated slot
  rotate = lambda x, index: jnp.take_along_axis(x, index[:, :, None, None], axis=1)
  keys = rotate(k.transpose(0, 2, 1, 3), take)  # [B, T, K, hd]
  values = rotate(v.transpose(0, 3, 1, 2), take)
  out = jax.nn.dot_product_attention(rotate(q, take), keys, values, is_causal=True,
                                     query_seq_lengths=lengths, key_value_seq_lengths=lengths,
                                     implementation="cudnn")
  return rotate(out, give).reshape(B, T, H * hd)


def _splash(q, k, v, key_mask):
  """Pallas splash attention on TPU, self-attention only (S == T, no cache).

  Left padding is segment 0 and real tokens segment 1 (a token attends only to its own
  segment), combined with the kernel's causal mask; rows are vmapped and KV heads too,
  each with the MQA kernel over its G query heads. T is padded to a multiple of 128
  (the kernel's block granularity) with segment-0 tokens. Limit: under a multi-device
  mesh the kernel is not partitioned by XLA; wrap the model call in shard_map over the
  batch axes for pods.
  """
  from jax.experimental.pallas.ops.tpu.splash_attention import (
      splash_attention_kernel as splash, splash_attention_mask as masks)
  B, T, H, hd = q.shape
  K = k.shape[1]
  G = H // K
  segments = _pad_to(key_mask.astype(jnp.int32), 1, 128)
  Tp = segments.shape[1]
  block = math.gcd(Tp, 512)
  kernel = splash.make_splash_mqa_single_device(
      masks.MultiHeadMask([masks.CausalMask((Tp, Tp)) for _ in range(G)]),
      block_sizes=splash.BlockSizes(block_q=block, block_kv=block, block_kv_compute=block,
                                    block_q_dkv=block, block_kv_dkv=block,
                                    block_kv_dkv_compute=block, block_q_dq=block,
                                    block_kv_dq=block))
  qg = _pad_to(q.reshape(B, T, K, G, hd).transpose(0, 2, 3, 1, 4), 3, 128) / math.sqrt(hd)
  keys, values = _pad_to(k, 2, 128), _pad_to(v.transpose(0, 1, 3, 2), 2, 128)
  per_head = jax.vmap(kernel, in_axes=(0, 0, 0, None))  # over KV heads
  per_row = jax.vmap(lambda q, k, v, seg: per_head(q.astype(k.dtype), k, v,
                                                   splash.SegmentIds(seg, seg)))
  out = per_row(qg, keys, values, segments)[:, :, :, :T]  # [B, K, G, T, hd]
  return out.transpose(0, 3, 1, 2, 4).reshape(B, T, H * hd).astype(q.dtype)
