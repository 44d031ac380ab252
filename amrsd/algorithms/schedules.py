"""Annealing schedules: pure functions of the step that fade a strength to 0."""

import jax.numpy as jnp


def anneal(step, total_steps: int, schedule: str = "linear"):
  """Fraction of the initial strength left at `step`: 1 at step 0, exactly 0 from `total_steps` on.

  step: int or int32 scalar (traceable). total_steps: K >= 1.
  linear: max(0, 1 - k/K) (RLSD's lam_k / lam0). cosine: (1 + cos(pi min(k/K, 1))) / 2.
  none: 1 at every step (the no-annealing ablation: the method never becomes GRPO).
  Returns a float32 scalar in [0, 1].
  """
  if total_steps < 1:
    raise ValueError(f"anneal: total_steps={total_steps} must be >= 1")
  frac = jnp.clip(jnp.asarray(step, jnp.float32) / total_steps, 0.0, 1.0)
  if schedule == "linear":
    left = 1.0 - frac
  elif schedule == "cosine":
    left = 0.5 * (1.0 + jnp.cos(jnp.pi * frac))
  elif schedule == "none":
    return jnp.ones((), jnp.float32)
  else:
    raise ValueError(f"anneal: schedule={schedule!r} is not valid; choose linear, cosine or none")
  # cos(pi) in float32 is not exactly -1 everywhere: make "after K it is GRPO" exact.
  return jnp.where(frac >= 1.0, 0.0, left).astype(jnp.float32)
