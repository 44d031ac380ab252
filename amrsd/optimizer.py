"""Optimizer pieces beyond optax's own: float32 master weights for bfloat16 parameters."""

import jax
import jax.numpy as jnp
import optax


def float32_master(inner: optax.GradientTransformation) -> optax.GradientTransformation:
  """Runs `inner` on a float32 copy of the parameters kept in the optimizer state.

  With bfloat16 parameters, an update smaller than half a bfloat16 step (lr 1e-6 on
  weights near 1) would round away every step; here it accumulates in the float32
  master copy, and the parameters become that copy rounded. Gradients and the inner
  optimizer's moments are float32 too. State: (master params, inner state).
  """
  def to32(tree):
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), tree)

  def init(params):
    master = to32(params)
    return master, inner.init(master)

  def update(grads, state, params=None):
    master, inner_state = state
    updates, inner_state = inner.update(to32(grads), inner_state, master)
    master = optax.apply_updates(master, updates)
    # optax.apply_updates adds in float32 and rounds to the parameter dtype, so
    # params + (master - params) lands exactly on the rounded master.
    updates = jax.tree.map(lambda m, p: m - jnp.asarray(p, jnp.float32), master, params)
    return updates, (master, inner_state)

  return optax.GradientTransformation(init, update)


def freeze_layers(layers: int, frozen: int) -> optax.GradientTransformation:
  """Zeroes the updates of the first `frozen` of `layers` stacked blocks.

  Block parameters are stacked [layers, ...], so the bottom blocks cannot be left out of
  the trainable set by a path filter; their update slice is masked instead. Leaves
  without a leading layer axis pass unchanged.
  """
  def update(updates, state, params=None):
    del params

    def one(u):
      if u.ndim >= 1 and u.shape[0] == layers:
        keep = (jnp.arange(layers) >= frozen).astype(u.dtype)
        return u * keep.reshape((layers,) + (1,) * (u.ndim - 1))
      return u

    return jax.tree.map(one, updates), state

  return optax.GradientTransformation(lambda params: optax.EmptyState(), update)
