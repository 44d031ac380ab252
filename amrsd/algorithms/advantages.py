"""Group-relative advantages (docs/algorithms.md section 1, step 3)."""

import jax.numpy as jnp

STD_EPS = 1e-6


def group_advantages(rewards, group_size: int, *, std_norm: bool = True):
  """GRPO / Dr.GRPO advantages of rollouts ordered group-major.

  rewards: [B*G] float, all G rollouts of prompt 0 first, then prompt 1, ...
  std_norm: True gives GRPO, (r - mean) / (std + 1e-6) with the unbiased group std
  (ddof=1, as TRL and verl); False gives Dr.GRPO, r - mean.
  Returns (advantages [B*G] float32, zero_variance [B] bool). Groups whose rewards are
  all equal carry no signal: their advantages are exactly 0 (not a rounding residue).
  """
  n = rewards.shape[0]
  if group_size < 1 or n % group_size:
    raise ValueError(f"group_advantages: {n} rewards do not split into groups of "
                     f"group_size={group_size}; rewards must be [num_prompts * group_size]")
  r = rewards.astype(jnp.float32).reshape(n // group_size, group_size)
  zero_variance = jnp.all(r == r[:, :1], axis=1)
  centered = r - jnp.mean(r, axis=1, keepdims=True)
  if std_norm and group_size > 1:
    centered = centered / (jnp.std(r, axis=1, ddof=1, keepdims=True) + STD_EPS)
  adv = jnp.where(zero_variance[:, None], 0.0, centered)
  return adv.reshape(n), zero_variance
