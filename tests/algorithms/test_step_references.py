"""The jitted step against numpy written from docs/algorithms.md (sections 1, 2, 3.2): RLSD's
loss, OPSD's loss on its own teacher weights, and the annealing strength at step k.

The references use only the model's full logits (float64 log-softmax here) and the
formulas of the spec, none of amrsd.algorithms' functions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from amrsd.algorithms.config import AlgorithmConfig
from amrsd.algorithms.step import make_grad_fn
from tests.algorithms.conftest import make_batch


def _log_softmax_rows(graphdef, state, ids, mask, r):
  """[N, R, V] float64 log pi(. | row prefix) at the R response positions."""
  logits = np.asarray(nnx.merge(graphdef, state)(jnp.asarray(ids), jnp.asarray(mask)),
                      np.float64)[:, -r - 1:-1]
  top = logits.max(-1, keepdims=True)
  return logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))


def _sampled(logp_all, batch):
  r = batch["response_mask"].shape[1]
  return np.take_along_axis(logp_all, batch["student_ids"][:, -r:, None], -1)[..., 0]


def _group_advantages(rewards, g):
  """(r - mean) / (std + 1e-6) per group; the unbiased std (amrsd's choice, as TRL's)."""
  x = rewards.reshape(-1, g).astype(np.float64)
  return ((x - x.mean(1, keepdims=True)) / (x.std(1, ddof=1, keepdims=True) + 1e-6)).reshape(-1)


def _ppo_token_mean(ls, lold, adv_t, mask, eps_lo, eps_hi):
  rho = np.exp(ls - lold)
  term = np.minimum(rho * adv_t, np.clip(rho, 1 - eps_lo, 1 + eps_hi) * adv_t)
  return -(term * mask).sum() / mask.sum()


def _near_policy(graphdef, state, seed, noise):
  batch = make_batch(seed)
  r = batch["response_mask"].shape[1]
  ls = _sampled(_log_softmax_rows(graphdef, state, batch["student_ids"], batch["student_mask"],
                                  r), batch)
  rng = np.random.default_rng(seed)
  batch["logp_old"] = (ls + rng.normal(0, noise, ls.shape)).astype(np.float32)
  return batch, ls


def test_rlsd_loss_through_the_step_matches_numpy(split_tiny):
  graphdef, state = split_tiny
  batch, ls = _near_policy(graphdef, state, 5, 0.3)
  r = batch["response_mask"].shape[1]
  # anneal_steps is AMR-SD's horizon; RLSD anneals over its own.
  config = AlgorithmConfig(name="rlsd", group_size=4, lam0=0.5, eps_w=0.2, rlsd_anneal_steps=20,
                           anneal_steps=3, logit_chunk=5)
  grad_fn = make_grad_fn(graphdef, config)
  lt = _sampled(_log_softmax_rows(graphdef, state, batch["teacher_ids"], batch["teacher_mask"],
                                  r), batch)
  adv = _group_advantages(batch["rewards"], 4)[:, None]
  w = np.clip(np.exp(np.sign(adv) * (lt - batch["logp_old"])), 0.8, 1.2)
  w = np.where(batch["has_hint"][:, None] > 0, w, 1.0)
  losses = set()
  for step in (0, 7, 30):
    _, metrics = grad_fn(state, batch, jnp.int32(step))
    lam = 0.5 * max(0.0, 1 - step / 20)
    expect = _ppo_token_mean(ls, batch["logp_old"], adv * ((1 - lam) + lam * w),
                             batch["response_mask"], 0.2, 0.2)
    assert float(metrics["anneal_strength"]) == pytest.approx(lam, abs=1e-7)
    assert float(metrics["loss"]) == pytest.approx(expect, rel=1e-4, abs=1e-6)
    losses.add(round(expect, 6))
  assert len(losses) == 3  # each strength gives its own loss


def test_opsd_loss_on_its_own_teacher_weights_matches_numpy(split_tiny):
  """JSD(beta = 0.5) over the whole vocabulary (opsd_topk = V), the teacher on other
  weights (the frozen initial copy), rows without a teacher context masked."""
  graphdef, state = split_tiny
  teacher = jax.tree.map(lambda p: p + 0.05 * jnp.cos(3.0 * p), state)
  batch, _ = _near_policy(graphdef, state, 6, 0.0)
  r, vocab = batch["response_mask"].shape[1], 128
  config = AlgorithmConfig(name="opsd", group_size=4, opsd_topk=vocab, logit_chunk=5)
  _, metrics = make_grad_fn(graphdef, config)(state, batch, 0, teacher)
  ps = np.exp(_log_softmax_rows(graphdef, state, batch["student_ids"], batch["student_mask"], r))
  pt = np.exp(_log_softmax_rows(graphdef, teacher, batch["teacher_ids"], batch["teacher_mask"],
                                r))
  m = 0.5 * (ps + pt)
  jsd = 0.5 * (ps * np.log(ps / m)).sum(-1) + 0.5 * (pt * np.log(pt / m)).sum(-1)
  mask = batch["response_mask"] * batch["has_hint"][:, None]
  expect = (jsd * mask).sum() / mask.sum()
  assert expect > 1e-4
  assert float(metrics["loss"]) == pytest.approx(expect, rel=1e-4)


@pytest.mark.parametrize("name,schedule", [("amrsd", "linear"), ("amrsd", "cosine"),
                                           ("rlsd", "cosine")])
def test_the_strength_at_step_k_is_the_schedules(split_tiny, name, schedule):
  """beta_k = beta0 schedule(k / K_anneal) for AMR-SD, lam_k = lam0 schedule(k / K) for
  RLSD with its own K, read from the step's metrics at the step the caller passes."""
  graphdef, state = split_tiny
  batch = make_batch(7)
  config = AlgorithmConfig(name=name, group_size=4, beta0=0.4, lam0=0.6, anneal_steps=10,
                           rlsd_anneal_steps=16, anneal_schedule=schedule, logit_chunk=5)
  grad_fn = make_grad_fn(graphdef, config)
  strength, horizon = (0.4, 10) if name == "amrsd" else (0.6, 16)
  for k in (0, 3, 9, 10, 15, 40):
    frac = min(k / horizon, 1.0)
    left = 1 - frac if schedule == "linear" else 0.5 * (1 + np.cos(np.pi * frac))
    _, metrics = grad_fn(state, batch, jnp.int32(k))
    assert float(metrics["anneal_strength"]) == pytest.approx(strength * left, abs=1e-6), k
