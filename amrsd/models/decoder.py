"""The decoder: one Flax NNX module for Llama / SmolLM2 / Qwen2 / Qwen3.

The transformer blocks keep their parameters stacked along a leading layer axis and
by default run under `jax.lax.scan`, so a 30-layer model compiles one block, not thirty
(`scan_layers=False` unrolls them; inference with a KV cache always unrolls them, see
`Decoder.hidden_states`). Every
parameter is annotated with a partition spec over the mesh axes
("data", "fsdp", "tensor"); the layer axis is never sharded.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx

from amrsd import sharding as sharding_lib
from amrsd.models import attention as attention_lib
from amrsd.models.config import ModelConfig


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class KVCache:
  """Keys and values of every layer for a fixed number of slots S.

  k:     L arrays [B, K, S, head_dim], one per layer, in the parameter dtype.
  v:     L arrays [B, K, head_dim, S]. In these layouts a layer's keys and values are the
         attention dots' operands as they lie, with no transpose (XLA:CPU's fast dots
         want the contracted axis last).
  mask:  [B, S] bool, True where the slot holds a real (non-pad) token.
  index: int32 scalar, the next slot to write.
  """
  k: tuple[jax.Array, ...]
  v: tuple[jax.Array, ...]
  mask: jax.Array
  index: jax.Array


def init_cache(config: ModelConfig, batch: int, slots: int, dtype=jnp.float32) -> KVCache:
  layers, K, hd = config.num_hidden_layers, config.num_key_value_heads, config.head_dim
  return KVCache(k=tuple(jnp.zeros((batch, K, slots, hd), dtype) for _ in range(layers)),
                 v=tuple(jnp.zeros((batch, K, hd, slots), dtype) for _ in range(layers)),
                 mask=jnp.zeros((batch, slots), bool), index=jnp.zeros((), jnp.int32))


def rope_frequencies(config: ModelConfig) -> jax.Array:
  """Inverse frequencies [head_dim // 2] of rotary embeddings, with Llama 3 rescaling."""
  dim = config.head_dim
  inv_freq = 1.0 / (config.rope_theta ** (jnp.arange(0, dim, 2, dtype=jnp.float32) / dim))
  scaling = config.rope_scaling_dict
  if scaling is None:
    return inv_freq
  factor = scaling["factor"]
  low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
  old_len = scaling["original_max_position_embeddings"]
  wavelen = 2 * math.pi / inv_freq
  smooth = (old_len / wavelen - low) / (high - low)
  smoothed = (1 - smooth) * inv_freq / factor + smooth * inv_freq
  scaled = jnp.where(wavelen > old_len / low, inv_freq / factor, inv_freq)
  is_medium = (wavelen >= old_len / high) & (wavelen <= old_len / low)
  return jnp.where(is_medium, smoothed, scaled)


def apply_rope(x: jax.Array, positions: jax.Array, inv_freq: jax.Array) -> jax.Array:
  """Rotates x [B, T, heads, head_dim] by positions [B, T] (rotate-half convention)."""
  angles = positions[:, :, None].astype(jnp.float32) * inv_freq  # [B, T, hd/2]
  cos = jnp.concatenate([jnp.cos(angles)] * 2, axis=-1)[:, :, None, :]
  sin = jnp.concatenate([jnp.sin(angles)] * 2, axis=-1)[:, :, None, :]
  x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
  rotated = jnp.concatenate([-x2, x1], axis=-1)
  return (x.astype(jnp.float32) * cos + rotated * sin).astype(x.dtype)


def rms_norm(x: jax.Array, weight: jax.Array, eps: float) -> jax.Array:
  x32 = x.astype(jnp.float32)
  normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + eps)
  return (normed * weight.astype(jnp.float32)).astype(x.dtype)


def positions_from_mask(attention_mask: jax.Array) -> jax.Array:
  """RoPE positions [B, T] that count only real tokens, so left padding shifts nothing."""
  return jnp.maximum(jnp.cumsum(attention_mask.astype(jnp.int32), axis=1) - 1, 0)


class LoRAParam(nnx.Param):
  """Low-rank adapter factors; a Param subtype so they can be trained alone."""


# What the backward pass keeps of each block (Decoder.remat); the rest is recomputed.
REMAT_POLICIES = {
    "none": None,  # keep every activation: fastest, most memory
    "full": jax.checkpoint_policies.nothing_saveable,  # keep only each block's input
    # Keep the outputs of the weight matmuls; recompute attention scores and elementwise
    # work, which at long sequence lengths are most of the memory and little of the time.
    "save_dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


class Decoder(nnx.Module):
  """Causal language model. Parameters use the layout x @ W (input dim first).

  remat: a REMAT_POLICIES name, applied to every block in the backward pass.
  scan_layers: run the blocks (without a KV cache) as a scan, compiling one block, or
    unrolled, compiling every block: slower to compile, room for XLA to overlap one
    layer's weight gathers with the previous layer's compute. Parameters stay stacked
    either way, so checkpoints do not depend on it.
  attention: an attention_lib.CHOICES name (auto, xla, chunked, cudnn, splash), read at
    trace time (amrsd/models/attention.py). attention_block: chunked's block size.
    Decoding one token through a cache always uses the xla path.
  """

  def __init__(self, config: ModelConfig, *, dtype=jnp.float32, remat: str = "none",
               scan_layers: bool = True, attention: str = "auto", rngs: nnx.Rngs):
    if remat not in REMAT_POLICIES:
      raise ValueError(f"remat={remat!r}: choose one of {', '.join(REMAT_POLICIES)}")
    self.config = config
    self.remat = remat
    self.scan_layers = scan_layers
    self.attention = attention_lib.check_choice(attention)
    self.attention_block = 512
    # The mesh the model runs on (set by models.load(..., mesh=)): activations are then
    # kept split by rows over ("data", "fsdp"), so that XLA gathers each layer's FSDP
    # weights instead of every row's activations.
    self.mesh = None
    # Training only the top blocks: the embedding and the lowest `frozen_layers` blocks
    # run under stop_gradient in their own scan, so no backward pass goes below them.
    self.frozen_layers = 0
    self.lora_targets = ()   # block weights with adapters, see add_lora
    self.lora_scale = 0.0
    c = config
    L, D, F, V = c.num_hidden_layers, c.hidden_size, c.intermediate_size, c.vocab_size
    q_dim, kv_dim = c.num_attention_heads * c.head_dim, c.num_key_value_heads * c.head_dim
    normal = nnx.initializers.normal(0.02)

    def param(shape, spec, init=normal):
      # Placement is done by the loader or the sharding rules, not at creation.
      return nnx.Param(init(rngs.params(), shape, dtype), out_sharding=spec,
                       eager_sharding=False)

    ones = lambda key, shape, dtype: jnp.ones(shape, dtype)
    zeros = lambda key, shape, dtype: jnp.zeros(shape, dtype)
    self.embed = param((V, D), ("tensor", "fsdp"))
    self.attn_norm = param((L, D), (None, None), ones)
    self.wq = param((L, D, q_dim), (None, "fsdp", "tensor"))
    self.wk = param((L, D, kv_dim), (None, "fsdp", "tensor"))
    self.wv = param((L, D, kv_dim), (None, "fsdp", "tensor"))
    self.wo = param((L, q_dim, D), (None, "tensor", "fsdp"))
    if c.attention_bias:
      self.bq = param((L, q_dim), (None, "tensor"), zeros)
      self.bk = param((L, kv_dim), (None, "tensor"), zeros)
      self.bv = param((L, kv_dim), (None, "tensor"), zeros)
    if c.qk_norm:
      self.q_norm = param((L, c.head_dim), (None, None), ones)
      self.k_norm = param((L, c.head_dim), (None, None), ones)
    self.mlp_norm = param((L, D), (None, None), ones)
    self.w_gate = param((L, D, F), (None, "fsdp", "tensor"))
    self.w_up = param((L, D, F), (None, "fsdp", "tensor"))
    self.w_down = param((L, F, D), (None, "tensor", "fsdp"))
    self.final_norm = param((D,), (None,), ones)
    if not c.tie_word_embeddings:
      self.lm_head = param((D, V), ("fsdp", "tensor"))

  def __call__(self, input_ids, attention_mask=None, *, positions=None, cache=None):
    """Logits of the next token.

    input_ids: [B, T] int32. attention_mask: [B, T], 1 for real tokens, 0 for padding
    (default all ones). positions: [B, T] RoPE positions (default: counted from the mask,
    after the real tokens already in the cache).
    cache: a KVCache to read and extend; the T new tokens go into slots
    [cache.index, cache.index + T).
    Returns float32 logits [B, T, V], and the updated cache when one was given.
    """
    hidden, new_cache = self.hidden_states(input_ids, attention_mask,
                                           positions=positions, cache=cache)
    logits = self.unembed(hidden)
    return logits if cache is None else (logits, new_cache)

  def unembed(self, hidden: jax.Array) -> jax.Array:
    """Final hidden states [..., D] -> float32 logits [..., V]."""
    head = self.embed[...].T if self.config.tie_word_embeddings else self.lm_head[...]
    return jnp.dot(hidden, head.astype(hidden.dtype),
                   preferred_element_type=jnp.float32).astype(jnp.float32)

  def hidden_states(self, input_ids, attention_mask=None, *, positions=None, cache=None,
                    layers=None, window=None):
    """Final normed hidden states [B, T, D] (parameter dtype) and the updated cache.

    With a cache (inference) the blocks run as an unrolled loop over per-layer weights:
    a scan slices them out of the stacked [L, ...] arrays, which XLA:CPU does by copying
    each layer's weights, at every decode step. layers: those per-layer weights
    (`split_layers`), so that a decode loop splits them once, outside the loop; by
    default they are sliced here, from the stacked arrays.
    window: with a cache, attend over its first `window` slots only (static; every query
    slot must lie below it): decoding reads the filled part of the cache, not all of it.
    """
    c = self.config
    B, T = input_ids.shape
    if attention_mask is None:
      attention_mask = jnp.ones((B, T), jnp.int32)
    attention_mask = attention_mask.astype(bool)
    if positions is None:
      positions = positions_from_mask(attention_mask)
      if cache is not None:  # continue after the real tokens already in the cache
        positions = positions + jnp.sum(cache.mask, axis=1, dtype=jnp.int32)[:, None]
    x = self._split_rows(self.embed[...][input_ids])

    if cache is None:
      key_mask, offset = attention_mask, 0
    else:
      key_mask = jax.lax.dynamic_update_slice(cache.mask, attention_mask, (0, cache.index))
      offset = cache.index
    implementation = "xla" if cache is not None and T == 1 else attention_lib.resolve(
        attention_lib.check_choice(self.attention), x.dtype, cached=cache is not None,
        keys=key_mask.shape[1], queries=T)

    inv_freq = rope_frequencies(c)

    def block(x, p, kv):
      """One block on layer weights p; kv: this layer's cache (keys, values) or None."""
      x = self._split_rows(x)
      h = rms_norm(x, p["attn_norm"], c.rms_norm_eps)
      q, k, v = h @ p["wq"], h @ p["wk"], h @ p["wv"]
      if c.attention_bias:
        q, k, v = q + p["bq"], k + p["bk"], v + p["bv"]
      q = q.reshape(B, T, c.num_attention_heads, c.head_dim)
      k = k.reshape(B, T, c.num_key_value_heads, c.head_dim)
      v = v.reshape(B, T, c.num_key_value_heads, c.head_dim)
      if c.qk_norm:
        q = rms_norm(q, p["q_norm"], c.rms_norm_eps)
        k = rms_norm(k, p["k_norm"], c.rms_norm_eps)
      q, k = apply_rope(q, positions, inv_freq), apply_rope(k, positions, inv_freq)
      k, v = k.transpose(0, 2, 1, 3), v.transpose(0, 2, 3, 1)  # KVCache layouts
      if kv is not None:
        kv = (jax.lax.dynamic_update_slice(kv[0], k.astype(kv[0].dtype),
                                           (0, 0, cache.index, 0)),
              jax.lax.dynamic_update_slice(kv[1], v.astype(kv[1].dtype),
                                           (0, 0, 0, cache.index)))
        k, v = kv[0][:, :, :window], kv[1][..., :window]
      attended = attention_lib.attention(q, k, v, key_mask[:, :window], offset,
                                         implementation=implementation,
                                         block=self.attention_block)
      x = x + attended @ p["wo"]
      h = rms_norm(x, p["mlp_norm"], c.rms_norm_eps)
      x = x + (jax.nn.silu(h @ p["w_gate"]) * (h @ p["w_up"])) @ p["w_down"]
      return x, kv

    if cache is None:
      if self.remat != "none":
        block = jax.checkpoint(block, policy=REMAT_POLICIES[self.remat])
      return rms_norm(self._run_blocks(block, x), self.final_norm[...], c.rms_norm_eps), None
    keys, values = [], []
    for p, kv in zip(self.split_layers() if layers is None else layers, zip(cache.k, cache.v)):
      x, (k, v) = block(x, p, kv)
      keys.append(k)
      values.append(v)
    new_cache = KVCache(k=tuple(keys), v=tuple(values), mask=key_mask, index=cache.index + T)
    return rms_norm(x, self.final_norm[...], c.rms_norm_eps), new_cache

  def _split_rows(self, x):
    """x [B, ...] constrained to rows over ("data", "fsdp") when a mesh is set and B splits."""
    if self.mesh is None or x.shape[0] % (self.mesh.shape["data"] * self.mesh.shape["fsdp"]):
      return x
    return jax.lax.with_sharding_constraint(x, sharding_lib.batch_sharding(self.mesh, x.ndim))

  def _run_blocks(self, block, x):
    """The blocks without a cache: scanned, or unrolled over static slices (scan_layers)."""
    def run(x, layers):
      if self.scan_layers:
        return jax.lax.scan(lambda x, p: (block(x, p, None)[0], None), x, layers)[0]
      for i in range(jax.tree.leaves(layers)[0].shape[0]):
        x = block(x, _layer(layers, i), None)[0]
      return x

    layers = self.layer_weights()
    frozen = self.frozen_layers
    if frozen:
      below = jax.tree.map(lambda a: jax.lax.stop_gradient(a[:frozen]), layers)
      x = jax.lax.stop_gradient(run(jax.lax.stop_gradient(x), below))
      layers = jax.tree.map(lambda a: a[frozen:], layers)
    return run(x, layers)

  def split_layers(self) -> list[dict[str, jax.Array]]:
    """`layer_weights` as one dict per layer (each a copy of its slice)."""
    layers = self.layer_weights()
    return [_layer(layers, i) for i in range(self.config.num_hidden_layers)]

  def layer_weights(self) -> dict[str, jax.Array]:
    """Stacked block weights [L, ...] by name, with LoRA deltas (if any) merged in."""
    layers = {name: getattr(self, name)[...] for name in self._layer_param_names()}
    for name in self.lora_targets:
      a, b = getattr(self, f"{name}_lora_a")[...], getattr(self, f"{name}_lora_b")[...]
      delta = jnp.einsum("lir,lro->lio", a, b, preferred_element_type=jnp.float32)
      layers[name] = (layers[name] + self.lora_scale * delta).astype(layers[name].dtype)
    return layers

  def add_lora(self, rank: int, alpha: float, targets, *, rngs: nnx.Rngs):
    """Adds low-rank adapters W + (alpha / rank) A B to the named block weights.

    A [L, in, rank] starts random, B [L, rank, out] at zero, so the model is unchanged
    until trained. Adapters are LoRAParam variables (train them with an
    nnx.OfType(LoRAParam) filter); save_hf exports the merged weights.
    """
    valid = ("wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down")
    for name in targets:
      if name not in valid:
        raise ValueError(f"LoRA target {name!r} is not a block weight; choose from "
                         f"{', '.join(valid)}")
      weight = getattr(self, name)
      L, fan_in, fan_out = weight.shape
      spec = weight.get_metadata()["out_sharding"]
      a = jax.random.normal(rngs.params(), (L, fan_in, rank), weight.dtype) / math.sqrt(fan_in)
      setattr(self, f"{name}_lora_a", LoRAParam(a, out_sharding=(None, spec[1], None),
                                                eager_sharding=False))
      setattr(self, f"{name}_lora_b", LoRAParam(jnp.zeros((L, rank, fan_out), weight.dtype),
                                                out_sharding=(None, None, spec[2]),
                                                eager_sharding=False))
    self.lora_targets = tuple(targets)
    self.lora_scale = alpha / rank

  def _layer_param_names(self):
    names = ["attn_norm", "wq", "wk", "wv", "wo", "mlp_norm", "w_gate", "w_up", "w_down"]
    if self.config.attention_bias:
      names += ["bq", "bk", "bv"]
    if self.config.qk_norm:
      names += ["q_norm", "k_norm"]
    return names


def _layer(layers, i):
  return jax.tree.map(lambda a: a[i], layers)

