"""Losses against numpy on small hand-made inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amrsd.algorithms import losses


def _numpy_aggregate(per_token, mask, agg):
  masked = per_token * mask
  if agg == "token-mean":
    return masked.sum() / max(mask.sum(), 1)
  if agg == "seq-mean-token-mean":
    rows = mask.sum(1) > 0
    return (masked.sum(1)[rows] / mask.sum(1)[rows]).mean()
  return (masked.sum(1) / mask.shape[1]).mean()


def _inputs():
  rng = np.random.default_rng(0)
  logp = -rng.uniform(0.1, 2.0, (4, 5))
  old = logp + rng.normal(0, 0.3, (4, 5))
  adv = np.array([[1.0], [-0.5], [0.0], [2.0]]) * np.ones((1, 5))
  mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]], float)
  return logp, old, adv, mask


@pytest.mark.parametrize("agg", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"])
def test_ppo_clip_matches_numpy(agg):
  logp, old, adv, mask = _inputs()
  ratio = np.exp(logp - old)
  per_token = -np.minimum(ratio * adv, np.clip(ratio, 0.8, 1.28) * adv)
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  loss, stats = losses.ppo_clip_loss(f32(logp), f32(old), f32(adv), f32(mask), eps_lo=0.2,
                                     eps_hi=0.28, agg=agg)
  assert float(loss) == pytest.approx(_numpy_aggregate(per_token, mask, agg), rel=1e-5)
  low = ((adv < 0) & (ratio < 0.8) & (mask > 0)).sum() / mask.sum()
  high = ((adv > 0) & (ratio > 1.28) & (mask > 0)).sum() / mask.sum()
  assert float(stats["clip_fraction_low"]) == pytest.approx(low)
  assert float(stats["clip_fraction_high"]) == pytest.approx(high)
  assert float(stats["clip_fraction"]) == pytest.approx(low + high)


def test_ppo_gradient_is_the_policy_gradient_inside_the_trust_region():
  logp = jnp.array([[-1.0, -2.0]])
  adv = jnp.array([[2.0, -1.0]])
  grad = jax.grad(lambda lp: losses.ppo_clip_loss(lp, jax.lax.stop_gradient(lp), adv, jnp.ones((1, 2)), eps_lo=0.2,
                                                  eps_hi=0.2)[0])(logp)
  np.testing.assert_allclose(grad, -adv / 2, rtol=1e-6)


def test_aggregate_rejects_unknown_mode():
  with pytest.raises(ValueError, match="token-mean"):
    losses.aggregate(jnp.zeros((1, 1)), jnp.ones((1, 1)), "sum")


def test_masked_infinities_do_not_leak_into_the_loss():
  per_token = jnp.array([[1.0, jnp.inf]])
  assert float(losses.aggregate(per_token, jnp.array([[1.0, 0.0]]), "token-mean")) == 1.0


def test_k3_kl_matches_numpy_and_is_zero_on_the_reference():
  logp, ref = np.array([-1.0, -2.0, -0.3]), np.array([-1.2, -1.0, -0.3])
  r = ref - logp
  np.testing.assert_allclose(losses.k3_kl(logp, ref), np.exp(r) - r - 1, rtol=1e-6)
  assert float(losses.k3_kl(jnp.float32(-1.0), jnp.float32(-1.0))) == 0.0


def test_tail_bucket_completes_the_distribution_stably():
  logits = np.array([[3.0, 1.0, 0.5, -1.0, -2.0], [80.0, 0.0, 0.0, 0.0, 0.0]])
  logp = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True)) \
      - logits.max(1, keepdims=True)
  top = np.sort(logp, axis=1)[:, ::-1][:, :2]
  with_tail = np.asarray(losses.add_tail(jnp.asarray(top, jnp.float32)))
  assert with_tail.shape == (2, 3)
  expect_tail = np.log(np.exp(np.sort(logp[0])[:3]).sum())
  assert with_tail[0, 2] == pytest.approx(expect_tail, rel=1e-4)
  # A top-k holding all the mass in float32 still gives a finite tail.
  assert np.all(np.isfinite(with_tail[1]))


def _numpy_kl(p, q):
  return (np.exp(p) * (p - q)).sum(-1)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
def test_generalized_jsd_matches_numpy(alpha):
  rng = np.random.default_rng(1)
  s = np.log(rng.dirichlet(np.ones(6), 3))
  t = np.log(rng.dirichlet(np.ones(6), 3))
  got = np.asarray(losses.generalized_jsd(jnp.asarray(s, jnp.float32),
                                          jnp.asarray(t, jnp.float32), alpha))
  if alpha == 0.0:
    expect = _numpy_kl(t, s)
  elif alpha == 1.0:
    expect = _numpy_kl(s, t)
  else:
    m = np.log((1 - alpha) * np.exp(s) + alpha * np.exp(t))
    expect = (1 - alpha) * _numpy_kl(s, m) + alpha * _numpy_kl(t, m)
  np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-7)
  same = losses.generalized_jsd(jnp.asarray(s, jnp.float32), jnp.asarray(s, jnp.float32), alpha)
  np.testing.assert_allclose(same, 0.0, atol=1e-6)


def test_distillation_loss_weights_and_masks_rows():
  rng = np.random.default_rng(2)
  s = np.log(rng.dirichlet(np.ones(5), (2, 3)))[..., :3]   # top-3 of 5 buckets
  t = np.log(rng.dirichlet(np.ones(5), (2, 3)))[..., :3]
  mask = np.array([[1, 1, 0], [0, 0, 0]], np.float32)       # row 1: no context
  weights = np.array([[2.0, 0.5, 9.0], [9.0, 9.0, 9.0]], np.float32)
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  loss, div = losses.topk_distillation_loss(f32(s), f32(t), f32(mask), alpha=0.5,
                                            weights=f32(weights))
  def tail(x):
    return np.concatenate([x, np.log1p(-np.exp(x).sum(-1, keepdims=True))], -1)
  m = np.log(0.5 * np.exp(tail(s)) + 0.5 * np.exp(tail(t)))
  expect_div = 0.5 * _numpy_kl(tail(s), m) + 0.5 * _numpy_kl(tail(t), m)
  np.testing.assert_allclose(div, expect_div, rtol=1e-4, atol=1e-7)
  expect = (expect_div * weights * mask).sum() / mask.sum()
  assert float(loss) == pytest.approx(expect, rel=1e-4)


def test_importance_weight_is_clipped_and_detached():
  logp = jnp.array([0.0, -1.0, 5.0])
  old = jnp.array([-0.5, -1.0, -40.0])
  np.testing.assert_allclose(losses.clipped_is_weight(logp, old, 2.0),
                             [np.exp(0.5), 1.0, 2.0], rtol=1e-6)
  grad = jax.grad(lambda lp: losses.clipped_is_weight(lp, old, 2.0).sum())(logp)
  assert np.all(np.asarray(grad) == 0.0)


def test_truncated_is_weights_the_policy_gradient_term_per_token():
  # Trainer and sampler log-probs of the same sampled tokens; by hand:
  # w = min(pi_trainer / pi_sampler, 1.5), l_t = -w_t min(rho A, clip(rho) A).
  logp, old, adv, mask = _inputs()
  trainer = old + np.random.default_rng(7).normal(0.0, 0.5, old.shape)
  weight = np.minimum(np.exp(trainer - old), 1.5)
  ratio = np.exp(logp - old)
  per_token = -weight * np.minimum(ratio * adv, np.clip(ratio, 0.8, 1.2) * adv)
  expect = (per_token * mask).sum() / mask.sum()
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  tis = losses.truncated_is_weight(f32(trainer), f32(old), 1.5)
  np.testing.assert_allclose(tis, weight, rtol=1e-5)
  assert (np.asarray(tis) <= 1.5).all() and (np.asarray(tis) < 1.5).any()

  def loss(lp, weight):
    return losses.ppo_clip_loss(lp, f32(old), f32(adv), f32(mask), eps_lo=0.2, eps_hi=0.2,
                                tis_weight=weight)
  value, stats = loss(f32(logp), tis)
  assert float(value) == pytest.approx(expect, rel=1e-5)
  assert float(stats["tis_weight_mean"]) == pytest.approx((weight * mask).sum() / mask.sum(),
                                                          rel=1e-5)
  # Detached: a weight computed from the differentiated log-probs adds no gradient.
  with_weight = jax.grad(lambda lp: loss(lp, losses.truncated_is_weight(lp, f32(old), 1.5))[0])
  by_hand = jax.grad(lambda lp: loss(lp, jnp.minimum(jnp.exp(f32(logp) - f32(old)), 1.5))[0])
  np.testing.assert_allclose(with_weight(f32(logp)), by_hand(f32(logp)), rtol=1e-6)
  # None is weight 1: the plain PPO-clip loss.
  plain = losses.ppo_clip_loss(f32(logp), f32(old), f32(adv), f32(mask), eps_lo=0.2, eps_hi=0.2)
  assert float(loss(f32(logp), None)[0]) == float(plain[0])
