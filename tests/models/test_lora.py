"""LoRA adapters: start as a no-op, train alone, export merged."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from amrsd import models
from tests.conftest import tiny_config


def _model():
  model = models.Decoder(tiny_config(num_hidden_layers=3), rngs=nnx.Rngs(0))
  ids = jnp.array([[5, 6, 7, 8, 9]], jnp.int32)
  return model, ids


def test_fresh_adapters_leave_the_logits_unchanged():
  model, ids = _model()
  before = model(ids)
  model.add_lora(4, 8.0, ("wq", "w_up"), rngs=nnx.Rngs(1))
  np.testing.assert_array_equal(model(ids), before)


def test_only_adapters_get_gradients_and_they_change_the_model():
  model, ids = _model()
  model.add_lora(4, 8.0, ("wq", "wv", "w_down"), rngs=nnx.Rngs(1))
  graphdef, lora, rest = nnx.split(model, nnx.OfType(models.LoRAParam), ...)
  assert {path for path, _ in lora.flat_state()} == {
      (f"{n}_lora_{x}",) for n in ("wq", "wv", "w_down") for x in "ab"}

  def loss(lora):
    return jnp.mean(nnx.merge(graphdef, lora, rest)(ids) ** 2)

  grads = jax.grad(loss)(lora)
  # B starts at zero, so A's gradient is zero at first and B's is not.
  assert float(jnp.abs(grads["wq_lora_b"][...]).max()) > 0
  moved = jax.tree.map(lambda p, g: p - 0.5 * g, lora, grads)
  assert not np.allclose(nnx.merge(graphdef, moved, rest)(ids), model(ids))


def test_export_merges_the_adapters(tmp_path):
  model, ids = _model()
  model.add_lora(2, 4.0, ("wq", "w_gate"), rngs=nnx.Rngs(1))
  b = model.wq_lora_b
  b.value = jax.random.normal(jax.random.key(3), b.shape) * 0.1
  models.save_hf(model, None, str(tmp_path))
  from safetensors.numpy import load_file
  tensors = load_file(str(tmp_path / "model.safetensors"))
  merged = model.layer_weights()["wq"][0]
  np.testing.assert_allclose(tensors["model.layers.0.self_attn.q_proj.weight"],
                             np.asarray(merged).T, atol=1e-6)
  assert not any("lora" in name for name in tensors)


def test_unknown_target_is_rejected():
  model, _ = _model()
  with pytest.raises(ValueError, match="LoRA target 'embed' is not a block weight"):
    model.add_lora(2, 4.0, ("embed",), rngs=nnx.Rngs(1))
