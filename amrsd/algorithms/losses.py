"""Losses: PPO-clip policy gradient, k3 KL, top-k generalized JSD (SDPO / OPSD).

Shapes: N rows, R response tokens, K buckets. Log-probs are float32 nats.
"""

import jax
import jax.numpy as jnp

# Largest log-mass the top-k may claim before the tail bucket is formed: keeps the
# tail's log finite (log(1 - e^x) -> -inf as x -> 0), as SDPO's reference code does.
_TAIL_LOG_MASS_MAX = -1e-7


def ppo_clip_loss(logp, old_logp, token_adv, mask, *, eps_lo: float, eps_hi: float,
                  agg: str = "token-mean", tis_weight=None):
  """PPO-clip surrogate, aggregated over valid tokens.

  logp: [N, R] current log-probs (differentiable). old_logp: [N, R] sampler's.
  token_adv: [N, R] (or [N, 1]) advantages. mask: [N, R] valid response tokens.
  tis_weight: [N, R] truncated importance weights w_t (`truncated_is_weight`, detached
    here) or None for 1.
    rho = exp(logp - old_logp)
    l_t = -w_t min(rho A_t, clip(rho, 1 - eps_lo, 1 + eps_hi) A_t)
  Returns (loss scalar, stats): clip_fraction_low / clip_fraction_high are the valid
  tokens where the clipped term is active below (A < 0, rho < 1 - eps_lo) / above
  (A > 0, rho > 1 + eps_hi); clip_fraction is their sum; with tis_weight,
  tis_weight_mean is its mean over valid tokens.
  """
  ratio = jnp.exp(logp - old_logp)
  clipped = jnp.clip(ratio, 1.0 - eps_lo, 1.0 + eps_hi)
  per_token = -jnp.minimum(ratio * token_adv, clipped * token_adv)
  if tis_weight is not None:
    per_token = per_token * jax.lax.stop_gradient(tis_weight)
  loss = aggregate(per_token, mask, agg)
  r = jax.lax.stop_gradient(ratio)
  low = ((token_adv < 0) & (r < 1.0 - eps_lo)).astype(jnp.float32)
  high = ((token_adv > 0) & (r > 1.0 + eps_hi)).astype(jnp.float32)
  stats = {"clip_fraction_low": masked_mean(low, mask),
           "clip_fraction_high": masked_mean(high, mask)}
  stats["clip_fraction"] = stats["clip_fraction_low"] + stats["clip_fraction_high"]
  if tis_weight is not None:
    stats["tis_weight_mean"] = masked_mean(jax.lax.stop_gradient(tis_weight), mask)
  return loss, stats


def aggregate(per_token, mask, agg: str):
  """Reduces a per-token loss [N, R] over the valid tokens mask [N, R] to a scalar.

  token-mean: sum(l m) / sum(m) (all tokens of the batch weigh the same).
  seq-mean-token-mean: mean over rows with >= 1 valid token of each row's token mean
  (original GRPO). seq-mean-token-sum-norm: mean over all rows of sum_t(l m) / R, R the
  response length budget (Dr.GRPO: no length bias).
  """
  m = mask.astype(jnp.float32)
  # The barrier materializes the masked loss before reducing, so XLA sums it in the same
  # order whatever produced it: a method that reduces to GRPO (AMR-SD at strength 0,
  # RLSD at lam 0) then gives GRPO's loss bit for bit.
  masked = jax.lax.optimization_barrier(jnp.where(m > 0, per_token * m, 0.0))
  if agg == "token-mean":
    return jnp.sum(masked) / jnp.maximum(jnp.sum(m), 1.0)
  if agg == "seq-mean-token-mean":
    tokens = jnp.sum(m, axis=1)
    row_means = jnp.sum(masked, axis=1) / jnp.maximum(tokens, 1.0)
    has_tokens = (tokens > 0).astype(jnp.float32)
    return jnp.sum(row_means * has_tokens) / jnp.maximum(jnp.sum(has_tokens), 1.0)
  if agg == "seq-mean-token-sum-norm":
    return jnp.mean(jnp.sum(masked, axis=1) / per_token.shape[1])
  raise ValueError(f"aggregate: agg={agg!r} is not valid; choose token-mean, "
                   "seq-mean-token-mean or seq-mean-token-sum-norm")


def k3_kl(logp, ref_logp):
  """Per-token k3 estimator of KL(pi || pi_ref): exp(r) - r - 1 with r = ref_logp - logp."""
  r = ref_logp - logp
  return jnp.exp(r) - r - 1.0


def add_tail(topk_logp):
  """Appends log(1 - sum exp(topk_logp)) as a last bucket: [..., k] -> [..., k + 1]."""
  mass = jnp.minimum(jax.nn.logsumexp(topk_logp, axis=-1, keepdims=True), _TAIL_LOG_MASS_MAX)
  return jnp.concatenate([topk_logp, jnp.log(-jnp.expm1(mass))], axis=-1)


def generalized_jsd(student_logp, teacher_logp, alpha: float):
  """Divergence per position between distributions given as log-probs [..., K] -> [...].

  alpha = 0: KL(teacher || student) (forward); alpha = 1: KL(student || teacher)
  (reverse); otherwise, with the mixture M = (1 - alpha) S + alpha T,
  (1 - alpha) KL(S || M) + alpha KL(T || M)  (SDPO's and GKD's convention).
  """
  if alpha == 0.0:
    return _kl(teacher_logp, student_logp)
  if alpha == 1.0:
    return _kl(student_logp, teacher_logp)
  mixture = jnp.logaddexp(student_logp + jnp.log1p(-alpha), teacher_logp + jnp.log(alpha))
  return (1.0 - alpha) * _kl(student_logp, mixture) + alpha * _kl(teacher_logp, mixture)


def topk_distillation_loss(student_topk, teacher_topk, mask, *, alpha: float, weights=None,
                           agg: str = "token-mean"):
  """Top-k + tail generalized JSD, weighted per token and aggregated.

  student_topk, teacher_topk: [N, R, k] log-softmax at the student's top-k ids
  (teacher constant). mask: [N, R], already zero on rows without a teacher context.
  weights: [N, R] per-token weights (detached here) or None for 1.
  Returns (loss scalar, per-token divergence [N, R] float32).
  """
  divergence = generalized_jsd(add_tail(student_topk), add_tail(teacher_topk), alpha)
  per_token = divergence if weights is None else divergence * jax.lax.stop_gradient(weights)
  return aggregate(per_token, mask, agg), divergence


def truncated_is_weight(logp_trainer, logp_sampler, cap: float):
  """Truncated importance weight min(pi_trainer / pi_sampler, cap) per token, detached.

  logp_trainer, logp_sampler: [N, R] float32 nats of the sampled tokens under the
  trainer's forward and under the sampler that drew them (their numerics differ: bf16,
  kernels, batch shapes). The log-ratio is clamped to [-20, 20] first so a stray token
  cannot overflow. Truncated importance sampling (TIS) weights the policy-gradient term
  by it (`ppo_clip_loss(tis_weight=...)`); SDPO weights its distillation term by it.
  """
  log_ratio = jnp.clip(jax.lax.stop_gradient(logp_trainer - logp_sampler), -20.0, 20.0)
  return jnp.minimum(jnp.exp(log_ratio), cap)


def clipped_is_weight(logp, old_logp, clip: float):
  """SDPO's name for `truncated_is_weight` (old_logp: the sampler's)."""
  return truncated_is_weight(logp, old_logp, clip)


def masked_mean(x, mask):
  """Mean of x over entries where mask > 0 (0 when there are none)."""
  m = mask.astype(jnp.float32)
  return jnp.sum(jnp.where(m > 0, x * m, 0.0)) / jnp.maximum(jnp.sum(m), 1.0)


def _kl(p_logp, q_logp):
  """KL(p || q) over the last axis; buckets with p = 0 contribute 0."""
  p = jnp.exp(p_logp)
  return jnp.sum(jnp.where(p > 0, p * (p_logp - q_logp), 0.0), axis=-1)
