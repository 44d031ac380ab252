"""Token advantages of AMR-SD (gated Causal Information Gain) and RLSD.

Pure functions of arrays and the step. Shapes: N rollouts, R response tokens.
Inputs are treated as constants (stop-gradient): they only shape the advantage.
"""

import jax
import jax.numpy as jnp

from amrsd.algorithms.config import AlgorithmConfig
from amrsd.algorithms.losses import masked_mean
from amrsd.algorithms.schedules import anneal

# |CIG| below this many nats is rounding, not information: the teacher and the update
# compute log-probs in differently fused programs, so one context gives both the same
# value only up to float32 rounding (~1e-7 nats; XLA's fusion choices vary with the CPU).
# Far below any useful threshold (tau_pos, tau_neg ~0.1-0.2 nats).
CIG_FLOOR = 1e-5


def amrsd_token_advantages(adv, teacher_logp, baseline_logp, mask, has_hint, step,
                           config: AlgorithmConfig):
  """A_t of AMR-SD (docs/algorithms.md 3.2).

  adv: [N] float32 group advantages A. teacher_logp: [N, R] lT, log pi(y_t | x, h, y<t).
  baseline_logp: [N, R] b_t, log pi(y_t | x, y<t): the trainer's lS (cig_baseline =
  trainer) or the sampler's logp_old (sampler). mask: [N, R] valid response tokens.
  has_hint: [N] 1 where the row has a teacher context. step: int32 scalar k.

    CIG_t  = lT_t - b_t (0 where |lT_t - b_t| < CIG_FLOOR);  s = sign(A)
    tau = tau_pos if s > 0 else tau_neg
    relu gate:          g_t = min(relu(s CIG_t - tau), kappa)
    rlsd_exp_clip gate: g_t = clip(exp(s CIG_t), 1 - eps_w, 1 + eps_w) - 1
    g_t = 0 on masked tokens, rows without hint, A == 0 and the sides not modulated
    beta_k = beta0 * schedule(k)
    multiplicative: A_t = A (1 + beta_k g_t);  additive: A_t = A + beta_k s g_t

  Returns (token_adv [N, R] float32, stats) with stats: gate_fraction (valid tokens
  with g != 0), cig_mean_pos / cig_std_pos and cig_mean_neg / cig_std_neg (CIG over
  valid hinted tokens of rows with A > 0 / A < 0), anneal_strength (beta_k).
  """
  c = config
  adv = jnp.asarray(adv, jnp.float32)
  cig = jax.lax.stop_gradient(teacher_logp - baseline_logp).astype(jnp.float32)
  cig = jnp.where(jnp.abs(cig) < CIG_FLOOR, 0.0, cig)
  s = jnp.sign(adv)[:, None]
  if c.gate == "relu":
    tau = jnp.where(s > 0, c.tau_pos, c.tau_neg)
    g = jnp.minimum(jax.nn.relu(s * cig - tau), c.kappa)
  else:
    g = jnp.clip(jnp.exp(s * cig), 1.0 - c.eps_w, 1.0 + c.eps_w) - 1.0
  side = {"both": s != 0, "pos_only": s > 0, "neg_only": s < 0}[c.sides]
  active = side & _valid(mask, has_hint)
  g = jnp.where(active, g, 0.0)
  beta = amrsd_strength(step, c)
  if c.cig_mode == "multiplicative":
    token_adv = adv[:, None] * (1.0 + beta * g)
  else:
    token_adv = adv[:, None] + beta * s * g
  stats = cig_stats(cig, adv, mask, has_hint)
  stats["gate_fraction"] = masked_mean((g != 0).astype(jnp.float32), mask)
  stats["anneal_strength"] = beta
  return token_adv, stats


def rlsd_token_advantages(adv, teacher_logp, old_logp, mask, has_hint, step,
                          config: AlgorithmConfig):
  """A_t of RLSD (docs/algorithms.md section 2).

    D_t  = lT_t - logp_old_t;  w_t = clip(exp(sign(A) D_t), 1 - eps_w, 1 + eps_w)
    lam_k = lam0 * schedule(k)  (linear: lam0 max(0, 1 - k/K), K = rlsd_anneal_steps)
    A_t  = A ((1 - lam_k) + lam_k w_t);  w_t = 1 on masked tokens and rows without context

  Same arguments and stats as amrsd_token_advantages; gate_fraction counts valid
  tokens whose weight differs from 1, anneal_strength is lam_k.
  """
  c = config
  adv = jnp.asarray(adv, jnp.float32)
  cig = jax.lax.stop_gradient(teacher_logp - old_logp).astype(jnp.float32)
  s = jnp.sign(adv)[:, None]
  w = jnp.clip(jnp.exp(s * cig), 1.0 - c.eps_w, 1.0 + c.eps_w)
  w = jnp.where(_valid(mask, has_hint), w, 1.0)
  lam = rlsd_strength(step, c)
  token_adv = adv[:, None] * ((1.0 - lam) + lam * w)
  stats = cig_stats(cig, adv, mask, has_hint)
  stats["gate_fraction"] = masked_mean((w != 1).astype(jnp.float32), mask)
  stats["anneal_strength"] = lam
  return token_adv, stats


def amrsd_strength(step, config: AlgorithmConfig):
  """beta_k = beta0 * schedule(k): AMR-SD's modulation strength at step k (float32 scalar)."""
  return config.beta0 * anneal(step, config.anneal_steps, config.anneal_schedule)


def rlsd_strength(step, config: AlgorithmConfig):
  """lam_k = lam0 * schedule(k) over RLSD's own horizon (float32 scalar)."""
  return config.lam0 * anneal(step, config.rlsd_anneal_steps, config.anneal_schedule)


def amrsd_rows(adv, step, config: AlgorithmConfig):
  """[N] bool: rows whose teacher can move AMR-SD's advantage at step k (A != 0 on a
  modulated side, beta_k > 0); the gate is 0 everywhere else (docs/algorithms.md 3.1)."""
  s = jnp.sign(jnp.asarray(adv, jnp.float32))
  side = {"both": s != 0, "pos_only": s > 0, "neg_only": s < 0}[config.sides]
  return side & (amrsd_strength(step, config) > 0)


def rlsd_rows(adv, step, config: AlgorithmConfig):
  """[N] bool: rows whose teacher can move RLSD's advantage at step k (A != 0, lam_k > 0)."""
  return (jnp.asarray(adv) != 0) & (rlsd_strength(step, config) > 0)


def cig_stats(cig, adv, mask, has_hint):
  """Mean and std of CIG [N, R] over valid hinted tokens, split by the sign of A [N]."""
  valid = _valid(mask, has_hint)
  stats = {}
  for name, rows in (("pos", adv > 0), ("neg", adv < 0)):
    sel = (valid & rows[:, None]).astype(jnp.float32)
    mean = masked_mean(cig, sel)
    stats[f"cig_mean_{name}"] = mean
    stats[f"cig_std_{name}"] = jnp.sqrt(masked_mean(jnp.square(cig - mean), sel))
  return stats


def _valid(mask, has_hint):
  """[N, R] bool: a real response token of a row that has a teacher context."""
  return (mask > 0) & (jnp.asarray(has_hint) > 0)[:, None]

