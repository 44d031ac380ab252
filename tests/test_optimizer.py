"""float32 master weights for bfloat16 parameters; the frozen-blocks update mask."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from amrsd.optimizer import float32_master, freeze_layers


def _run(tx, params, steps=100):
  state = tx.init(params)
  grads = jax.tree.map(jnp.ones_like, params)
  for _ in range(steps):
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
  return params, state


def test_small_updates_accumulate_instead_of_rounding_away():
  params = {"w": jnp.ones((3,), jnp.bfloat16)}
  plain, _ = _run(optax.sgd(1e-4), params)
  master, state = _run(float32_master(optax.sgd(1e-4)), params)
  assert np.all(np.asarray(plain["w"], np.float32) == 1.0)   # every step rounded away
  np.testing.assert_allclose(np.asarray(state[0]["w"]), 0.99, rtol=1e-5)
  assert master["w"].dtype == jnp.bfloat16
  np.testing.assert_array_equal(np.asarray(master["w"], np.float32),
                                np.asarray(jnp.asarray(0.99, jnp.bfloat16), np.float32))


def test_adam_state_is_float32_and_matches_float32_training():
  params32 = {"w": jnp.linspace(-1.0, 1.0, 8)}
  params16 = jax.tree.map(lambda x: x.astype(jnp.bfloat16), params32)
  start16 = jax.tree.map(lambda x: x.astype(jnp.float32), params16)
  reference, _ = _run(optax.adam(1e-3), start16, steps=20)
  _, state = _run(float32_master(optax.adam(1e-3)), params16, steps=20)
  master, adam_state = state
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(adam_state)
             if hasattr(x, "dtype") and x.ndim)
  np.testing.assert_allclose(np.asarray(master["w"]), np.asarray(reference["w"]), rtol=1e-6)


def test_freeze_layers_zeroes_the_bottom_blocks_only():
  stage = freeze_layers(layers=3, frozen=2)
  updates = {"blocks": jnp.ones((3, 2, 2)), "head": jnp.ones((5,)), "scale": jnp.ones((3,))}
  out, _ = stage.update(updates, stage.init(updates))
  np.testing.assert_array_equal(out["blocks"][:2], 0.0)
  np.testing.assert_array_equal(out["blocks"][2], 1.0)
  np.testing.assert_array_equal(out["head"], 1.0)
  # A leaf whose first axis is the layer count is masked too: [L] per-layer scalars.
  np.testing.assert_array_equal(out["scale"], [0.0, 0.0, 1.0])
