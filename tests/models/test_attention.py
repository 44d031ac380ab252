"""Attention implementations: chunked (and the kernels where they run) equal xla."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from amrsd import models, sharding
from amrsd.models import attention as attention_lib
from tests.conftest import tiny_config

# Left-pad amounts per row; T = 11 with block 4: neither T nor the padding divides evenly.
PADS = (0, 3, 7, 10)
T = 11


def _padded_batch():
  ids = np.random.default_rng(0).integers(2, 128, (len(PADS), T)).astype(np.int32)
  mask = (np.arange(T)[None, :] >= np.array(PADS)[:, None]).astype(np.int32)
  mask[0, 9:] = 0  # padding after the end of a response, as the trainer's rows have
  return ids, mask


def _logits_and_grads(attention, mesh_shape=(1, 1, 1), model_type="qwen3", remat="none"):
  """Logits on real tokens and parameter gradients of a next-token loss over real pairs."""
  ids, mask = _padded_batch()
  model = models.Decoder(tiny_config(model_type), attention=attention, remat=remat,
                         rngs=nnx.Rngs(0))
  model.attention_block = 4
  mesh = sharding.make_mesh(mesh_shape)
  model.mesh = mesh
  graphdef, state = nnx.split(model)
  state = sharding.place_state(state, mesh)
  batch = sharding.put_batch(mesh, {"ids": ids, "mask": mask})

  def loss(state, ids, mask):
    logits = nnx.merge(graphdef, state)(ids, mask)
    logp = jax.nn.log_softmax(logits[:, :-1])
    picked = jnp.take_along_axis(logp, ids[:, 1:, None], axis=-1)[..., 0]
    pairs = (mask[:, 1:] * mask[:, :-1]) > 0  # a pad position's logits are not compared
    return -jnp.sum(jnp.where(pairs, picked, 0.0)), logits

  grads, logits = jax.jit(jax.grad(loss, has_aux=True))(state, batch["ids"], batch["mask"])
  real = mask.astype(bool)
  return np.asarray(logits)[real], {p: np.asarray(v[...]) for p, v in grads.flat_state()}


@pytest.mark.parametrize("mesh_shape", [(1, 1, 1), (2, 2, 2)])
def test_chunked_matches_xla_on_padded_batches_across_meshes(mesh_shape):
  expected_logits, expected_grads = _logits_and_grads("xla", mesh_shape)
  logits, grads = _logits_and_grads("chunked", mesh_shape)
  np.testing.assert_allclose(logits, expected_logits, atol=1e-4, rtol=0)
  for path, value in expected_grads.items():
    assert np.abs(value).max() > 0, path  # every parameter takes part
    np.testing.assert_allclose(grads[path], value, atol=1e-4, rtol=0, err_msg=str(path))


@pytest.mark.parametrize("model_type", ["llama"])
def test_chunked_matches_xla_under_full_remat(model_type):
  expected_logits, expected_grads = _logits_and_grads("xla", model_type=model_type)
  logits, grads = _logits_and_grads("chunked", model_type=model_type, remat="full")
  np.testing.assert_allclose(logits, expected_logits, atol=1e-4, rtol=0)
  for path, value in expected_grads.items():
    np.testing.assert_allclose(grads[path], value, atol=1e-4, rtol=0, err_msg=str(path))


def _qkv(B=3, T=T, S=None, H=4, K=2, hd=8, seed=1):
  rng = np.random.default_rng(seed)
  S = S or T
  q = jnp.asarray(rng.normal(size=(B, T, H, hd)), jnp.float32)
  k = jnp.asarray(rng.normal(size=(B, K, S, hd)), jnp.float32)
  v = jnp.asarray(rng.normal(size=(B, K, hd, S)), jnp.float32)
  return q, k, v


def _reference(q, k, v, key_mask, offset):
  """numpy: per row, head and query, softmax over the allowed keys (none: skipped)."""
  q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
  B, T, H, hd = q.shape
  K, S = k.shape[1], k.shape[2]
  out = np.zeros((B, T, H, hd))
  for b in range(B):
    for h in range(H):
      g = h // (H // K)
      for t in range(T):
        keys = [s for s in range(S) if s <= offset + t and key_mask[b, s]]
        if not keys:
          continue
        scores = np.array([q[b, t, h] @ k[b, g, s] for s in keys]) / np.sqrt(hd)
        w = np.exp(scores - scores.max())
        out[b, t, h] = (w / w.sum()) @ v[b, g][:, keys].T
  return out.reshape(B, T, H * hd)


def test_chunked_prefill_into_a_cache_matches_numpy():
  # Queries at slots 5..15 of a 24-slot cache whose first 5 slots hold earlier tokens;
  # some rows start with padding, later slots are empty.
  q, k, v = _qkv(S=24)
  key_mask = np.zeros((3, 24), bool)
  key_mask[:, 2:16] = True
  key_mask[1, :9] = False
  got = attention_lib.attention(q, k, v, jnp.asarray(key_mask), jnp.int32(5),
                                implementation="chunked", block=4)
  want = _reference(q, k, v, key_mask, 5)
  rows = np.array([[t + 5 >= 9 if b == 1 else True for t in range(T)] for b in range(3)])
  np.testing.assert_allclose(np.asarray(got)[rows], want[rows], atol=1e-5)


def test_an_invalid_attention_name_is_refused_with_the_choices():
  with pytest.raises(ValueError, match="choose one of auto, xla, chunked, cudnn, splash"):
    models.Decoder(tiny_config(), attention="flash", rngs=nnx.Rngs(0))
  model = models.Decoder(tiny_config(), rngs=nnx.Rngs(0))
  model.attention = "flash"  # set after loading: refused at the next call
  with pytest.raises(ValueError, match="attention='flash'"):
    model(jnp.ones((1, 4), jnp.int32))


def test_auto_picks_xla_on_short_and_chunked_on_long_cpu_inputs():
  assert jax.default_backend() == "cpu"
  assert attention_lib.resolve("auto", jnp.float32, cached=False, keys=512, queries=512) == "xla"
  assert attention_lib.resolve("auto", jnp.float32, cached=False, keys=4096,
                               queries=4096) == "chunked"
  # A short append to a long cache: few scores, no block padding.
  assert attention_lib.resolve("auto", jnp.float32, cached=True, keys=6144, queries=96) == "xla"
  with pytest.raises(ValueError, match="needs a GPU"):
    attention_lib.resolve("cudnn", jnp.bfloat16, cached=False, keys=512, queries=512)
  with pytest.raises(ValueError, match="needs a TPU"):
    attention_lib.resolve("splash", jnp.bfloat16, cached=False, keys=512, queries=512)


def test_splash_masking_matches_xla_in_pallas_interpret_mode(monkeypatch):
  # The TPU kernel run by Pallas' interpreter on CPU: checks the segment ids, the padding
  # to 128 and the per-KV-head vmap, not the kernel's speed.
  from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel
  monkeypatch.setattr(splash_attention_kernel, "make_splash_mqa_single_device",
                      functools.partial(splash_attention_kernel.make_splash_mqa_single_device,
                                        interpret=True))
  q, k, v = _qkv(B=2, T=130, hd=128)
  key_mask = np.ones((2, 130), bool)
  key_mask[1, :3] = False
  key_mask[0, 120:] = False
  got = attention_lib._splash(q, k, v, jnp.asarray(key_mask))
  want = attention_lib.attention(q, k, v, jnp.asarray(key_mask), 0, implementation="xla")
  np.testing.assert_allclose(np.asarray(got)[key_mask], np.asarray(want)[key_mask], atol=1e-4)


def _kernel_against_xla(implementation, hd):
  q, k, v = (a.astype(jnp.bfloat16) for a in _qkv(B=2, T=256, hd=hd))
  key_mask = np.ones((2, 256), bool)
  key_mask[1, :37] = False  # left padding
  key_mask[0, 200:] = False  # padding after the end of a response
  got = attention_lib.attention(q, k, v, jnp.asarray(key_mask), 0,
                                implementation=implementation)
  want = attention_lib.attention(q, k, v, jnp.asarray(key_mask), 0, implementation="xla")
  np.testing.assert_allclose(np.asarray(got, np.float32)[key_mask],
                             np.asarray(want, np.float32)[key_mask], atol=2e-2)


@pytest.mark.skipif(jax.default_backend() != "gpu", reason="cuDNN attention needs a GPU")
def test_cudnn_matches_xla_on_gpu():
  _kernel_against_xla("cudnn", hd=64)


@pytest.mark.skipif(jax.default_backend() != "tpu", reason="splash attention needs a TPU")
def test_splash_matches_xla_on_tpu():
  _kernel_against_xla("splash", hd=128)
