"""CIG kernel (AMR-SD) and RLSD token advantages against numpy."""

import itertools

import numpy as np
import pytest

from amrsd.algorithms.cig import amrsd_token_advantages, rlsd_token_advantages
from amrsd.algorithms.config import AlgorithmConfig


def _numpy_amrsd(adv, lt, lold, mask, hint, step, c):
  cig = lt.astype(np.float64) - lold
  cig = np.where(np.abs(cig) < 1e-5, 0.0, cig)  # rounding between two programs: no gain
  s = np.sign(adv)[:, None]
  if c.gate == "relu":
    tau = np.where(s > 0, c.tau_pos, c.tau_neg)
    g = np.minimum(np.maximum(s * cig - tau, 0), c.kappa)
  else:
    g = np.clip(np.exp(s * cig), 1 - c.eps_w, 1 + c.eps_w) - 1
  side = {"both": s != 0, "pos_only": s > 0, "neg_only": s < 0}[c.sides]
  g = np.where(side & (mask > 0) & (hint[:, None] > 0), g, 0.0)
  frac = min(step / c.anneal_steps, 1.0)
  sched = {"linear": 1 - frac, "cosine": 0.5 * (1 + np.cos(np.pi * frac)),
           "none": 1.0}[c.anneal_schedule]
  beta = c.beta0 * sched
  if c.cig_mode == "multiplicative":
    out = adv[:, None] * (1 + beta * g)
  else:
    out = adv[:, None] + beta * s * g
  return out, g, beta


def _numpy_rlsd(adv, lt, lold, mask, hint, step, c):
  w = np.clip(np.exp(np.sign(adv)[:, None] * (lt.astype(np.float64) - lold)),
              1 - c.eps_w, 1 + c.eps_w)
  w = np.where((mask > 0) & (hint[:, None] > 0), w, 1.0)
  lam = c.lam0 * max(0.0, 1 - step / c.rlsd_anneal_steps)
  return adv[:, None] * ((1 - lam) + lam * w), lam


def _inputs(seed=0, n=6, r=9):
  rng = np.random.default_rng(seed)
  adv = np.array([1.2, -0.7, 0.0, 0.4, -1.5, 2.0], np.float32)[:n]
  lold = -rng.uniform(0.1, 3.0, (n, r)).astype(np.float32)
  lt = (lold + rng.normal(0, 0.6, (n, r))).astype(np.float32)
  mask = (rng.uniform(size=(n, r)) > 0.2).astype(np.float32)
  hint = np.array([1, 1, 1, 0, 1, 1], np.float32)[:n]
  return adv, lt, lold, mask, hint


OPTIONS = list(itertools.product(["multiplicative", "additive"], ["relu", "rlsd_exp_clip"],
                                 ["both", "pos_only", "neg_only"], ["linear", "cosine"]))


@pytest.mark.parametrize("mode,gate,sides,schedule", OPTIONS)
def test_amrsd_matches_numpy_for_every_option(mode, gate, sides, schedule):
  c = AlgorithmConfig(name="amrsd", cig_mode=mode, gate=gate, sides=sides,
                      anneal_schedule=schedule, beta0=0.8, tau_pos=0.2, tau_neg=0.1,
                      kappa=0.5, anneal_steps=10)
  x = _inputs()
  got, stats = amrsd_token_advantages(*x, 3, c)
  expect, g, beta = _numpy_amrsd(*x, 3, c)
  np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-6)
  mask = x[3]
  assert float(stats["gate_fraction"]) == pytest.approx(((g != 0) * mask).sum() / mask.sum(),
                                                        abs=1e-6)
  assert float(stats["anneal_strength"]) == pytest.approx(beta, abs=1e-6)


def test_without_annealing_the_gate_stays_open_past_the_horizon():
  c = AlgorithmConfig(name="amrsd", anneal_schedule="none", beta0=0.8, anneal_steps=10)
  x = _inputs()
  got, stats = amrsd_token_advantages(*x, 25, c)
  expect, g, beta = _numpy_amrsd(*x, 25, c)
  np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-6)
  assert beta == 0.8 and float(stats["anneal_strength"]) == pytest.approx(0.8)
  assert (g != 0).any() and not np.allclose(got, np.broadcast_to(x[0][:, None], got.shape))


def test_amrsd_gate_is_sparse_and_sign_preserving():
  c = AlgorithmConfig(name="amrsd", beta0=0.5)
  adv, lt, lold, mask, hint = _inputs()
  got, stats = amrsd_token_advantages(adv, lt, lold, mask, hint, 0, c)
  got = np.asarray(got)
  assert 0 < float(stats["gate_fraction"]) < 1
  # Never below |A| and never a flipped sign.
  assert np.all(np.abs(got) >= np.abs(adv)[:, None] - 1e-7)
  assert np.all(np.sign(got) == np.sign(adv)[:, None])


def test_cig_statistics_match_numpy():
  c = AlgorithmConfig(name="amrsd")
  adv, lt, lold, mask, hint = _inputs()
  _, stats = amrsd_token_advantages(adv, lt, lold, mask, hint, 0, c)
  cig = lt.astype(np.float64) - lold
  for name, rows in (("pos", adv > 0), ("neg", adv < 0)):
    sel = (mask > 0) & (hint[:, None] > 0) & rows[:, None]
    assert float(stats[f"cig_mean_{name}"]) == pytest.approx(cig[sel].mean(), abs=1e-5)
    assert float(stats[f"cig_std_{name}"]) == pytest.approx(cig[sel].std(), abs=1e-5)


def test_cig_exactly_at_threshold_keeps_the_grpo_advantage():
  c = AlgorithmConfig(name="amrsd", tau_pos=0.25, tau_neg=0.5, beta0=1.0)
  adv = np.array([1.5, -0.5], np.float32)
  lold = np.full((2, 3), -1.25, np.float32)
  lt = np.array([[-1.0, -1.0, -0.5], [-1.75, -1.75, -2.0]], np.float32)  # CIG: .25 / -.5 at tau
  got, stats = amrsd_token_advantages(adv, lt, lold, np.ones((2, 3), np.float32),
                                      np.ones(2, np.float32), 0, c)
  got = np.asarray(got)
  assert np.all(got[:, :2] == adv[:, None])      # exactly at the threshold: g = 0
  assert got[0, 2] == np.float32(1.5 * (1 + 0.5))  # 0.75 - 0.25 = 0.5 above it
  assert got[1, 2] == np.float32(-0.5 * (1 + 0.25))
  assert float(stats["gate_fraction"]) == pytest.approx(2 / 6)


def test_zero_advantage_masked_tokens_and_rows_without_hint_are_untouched():
  c = AlgorithmConfig(name="amrsd", tau_pos=0.0, tau_neg=0.0, beta0=1.0)
  adv, lt, lold, mask, hint = _inputs()
  lt = lold + 5.0 * np.sign(adv)[:, None] + 5.0  # every valid token far above threshold
  got = np.asarray(amrsd_token_advantages(adv, lt, lold, mask, hint, 0, c)[0])
  untouched = (mask == 0) | (hint[:, None] == 0) | (adv[:, None] == 0)
  assert np.all(got[untouched] == np.broadcast_to(adv[:, None], got.shape)[untouched])
  assert np.all(got[2] == 0.0)                       # A exactly 0 stays 0
  assert np.any(got[~untouched] != np.broadcast_to(adv[:, None], got.shape)[~untouched])


@pytest.mark.parametrize("override,step", [({"beta0": 0.0}, 0), ({}, 10), ({}, 25),
                                           ({"tau_pos": float("inf"),
                                             "tau_neg": float("inf")}, 0)])
def test_no_strength_or_infinite_threshold_is_exactly_grpo(override, step):
  c = AlgorithmConfig(name="amrsd", anneal_steps=10, **override)
  adv, lt, lold, mask, hint = _inputs()
  got = np.asarray(amrsd_token_advantages(adv, lt, lold, mask, hint, step, c)[0])
  assert np.array_equal(got, np.broadcast_to(adv[:, None], got.shape))


@pytest.mark.parametrize("step", [0, 7, 20, 40])
def test_rlsd_matches_numpy(step):
  # anneal_steps is AMR-SD's horizon: RLSD must not read it.
  c = AlgorithmConfig(name="rlsd", lam0=0.5, eps_w=0.2, rlsd_anneal_steps=20, anneal_steps=3)
  x = _inputs(1)
  got, stats = rlsd_token_advantages(*x, step, c)
  expect, lam = _numpy_rlsd(*x, step, c)
  np.testing.assert_allclose(got, expect, rtol=1e-6, atol=1e-7)
  assert float(stats["anneal_strength"]) == pytest.approx(lam)
  if step >= 20:
    assert np.array_equal(np.asarray(got), np.broadcast_to(x[0][:, None], expect.shape))


def test_rlsd_without_mixing_is_exactly_grpo():
  c = AlgorithmConfig(name="rlsd", lam0=0.0)
  adv, lt, lold, mask, hint = _inputs(2)
  got = np.asarray(rlsd_token_advantages(adv, lt, lold, mask, hint, 0, c)[0])
  assert np.array_equal(got, np.broadcast_to(adv[:, None], got.shape))


def test_cig_under_the_rounding_floor_opens_no_gate():
  """Two programs' log-probs of one context differ by float32 rounding only: with tau = 0
  that must not count as gain (|CIG| < 1e-5 nats is 0); 1e-4 nats does count."""
  c = AlgorithmConfig(name="amrsd", group_size=2, tau_pos=0.0, tau_neg=0.0)
  adv = np.array([1.0, -1.0], np.float32)
  base = np.full((2, 3), -2.0, np.float32)
  mask, hint = np.ones((2, 3), np.float32), np.ones(2, np.float32)
  for delta, opened in ((np.float32(3e-7), 0.0), (np.float32(1e-4), 1.0)):
    teacher = base + np.array([[delta], [-delta]], np.float32)
    out, stats = amrsd_token_advantages(adv, teacher, base, mask, hint, 0, c)
    assert float(stats["gate_fraction"]) == opened, delta
    expect, _, _ = _numpy_amrsd(adv, teacher, base, mask, hint, 0, c)
    np.testing.assert_allclose(np.asarray(out), expect, rtol=1e-6)
  teacher = base + np.float32(3e-7)
  _, stats = amrsd_token_advantages(adv, teacher, base, mask, hint, 0, c)
  assert float(stats["cig_mean_pos"]) == 0.0 and float(stats["cig_mean_neg"]) == 0.0
