"""The train step end to end on the tiny model."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from amrsd.algorithms import cig, logprobs, losses
from amrsd.algorithms.advantages import group_advantages
from amrsd.algorithms.config import AlgorithmConfig
from amrsd.algorithms.step import (check_batch, init_opt_state, make_grad_fn, make_train_step,
                                   metric_names)
from tests.algorithms.conftest import make_batch

BASE = dict(group_size=4, logit_chunk=7)


def _on_policy_batch(graphdef, state, seed=0, noise=0.05, **kwargs):
  """A batch whose logp_old is near the current policy, so PPO ratios stay unclipped."""
  b = make_batch(seed, **kwargs)
  r = b["response_mask"].shape[1]
  lp, _ = logprobs.token_logprobs((graphdef, state), b["student_ids"], b["student_mask"],
                                  b["student_ids"].shape[1] - r)
  rng = np.random.default_rng(seed + 1)
  b["logp_old"] = (np.asarray(lp) + rng.normal(0, noise, lp.shape)).astype(np.float32)
  return b


def _assert_trees_identical(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    assert np.array_equal(np.asarray(x), np.asarray(y))


def test_amrsd_without_strength_and_rlsd_without_mixing_are_grpo_bit_for_bit(split_tiny):
  graphdef, state = split_tiny
  batch = _on_policy_batch(graphdef, state)
  grads, metrics = make_grad_fn(graphdef, AlgorithmConfig(name="grpo", **BASE))(state, batch, 3)
  assert float(metrics["grad_norm"]) > 0
  inf = float("inf")
  for config in (AlgorithmConfig(name="amrsd", beta0=0.0, tau_pos=0, tau_neg=0, **BASE),
                 AlgorithmConfig(name="amrsd", tau_pos=inf, tau_neg=inf, **BASE),
                 AlgorithmConfig(name="rlsd", lam0=0.0, **BASE)):
    other, other_metrics = make_grad_fn(graphdef, config)(state, batch, 3)
    assert np.array_equal(np.asarray(other_metrics["loss"]), np.asarray(metrics["loss"])), config
    _assert_trees_identical(other, grads)


def _reference_amrsd_grads(graphdef, state, batch, config, step):
  """AMR-SD loss with the teacher's log-probs computed beforehand as a constant array."""
  r = batch["response_mask"].shape[1]
  t_logp, _ = logprobs.token_logprobs((graphdef, state), batch["teacher_ids"],
                                      batch["teacher_mask"], batch["teacher_ids"].shape[1] - r)
  adv = group_advantages(batch["rewards"], config.group_size)[0]
  def loss_fn(state):
    lp, _ = logprobs.token_logprobs((graphdef, state), batch["student_ids"],
                                    batch["student_mask"], batch["student_ids"].shape[1] - r)
    baseline = jax.lax.stop_gradient(lp) if config.cig_baseline == "trainer" else batch["logp_old"]
    token_adv, _ = cig.amrsd_token_advantages(adv, t_logp, baseline, batch["response_mask"],
                                              batch["has_hint"], step, config)
    return losses.ppo_clip_loss(lp, batch["logp_old"], token_adv, batch["response_mask"],
                                eps_lo=config.eps_lo, eps_hi=config.eps_hi)[0]
  return jax.grad(loss_fn)(state)


@pytest.mark.parametrize("teacher_forward", ["separate", "stacked"])
def test_teacher_rows_receive_no_gradient(split_tiny, teacher_forward):
  graphdef, state = split_tiny
  batch = _on_policy_batch(graphdef, state, noise=0.5)
  config = AlgorithmConfig(name="amrsd", beta0=2.0, tau_pos=0.0, tau_neg=0.0, kappa=5.0,
                           teacher_forward=teacher_forward, **BASE)
  grads, metrics = make_grad_fn(graphdef, config)(state, batch, 0)
  assert 0.05 < float(metrics["gate_fraction"]) < 1
  expect = _reference_amrsd_grads(graphdef, state, batch, config, 0)
  for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(expect), strict=True):
    np.testing.assert_allclose(a, b, atol=2e-6)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_a_teacher_context_equal_to_the_prompt_gives_cig_exactly_zero(split_tiny, dtype):
  graphdef, state = split_tiny
  state = jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x,
                       state)
  batch = _on_policy_batch(graphdef, state, noise=0.1)
  batch.update(teacher_ids=batch["student_ids"], teacher_mask=batch["student_mask"],
               has_hint=np.ones(8, np.float32))
  tx = optax.sgd(1e-3)
  copy = lambda tree: jax.tree.map(jnp.copy, tree)
  gates = {}
  for baseline in ("trainer", "sampler"):
    config = AlgorithmConfig(name="amrsd", tau_pos=0.0, tau_neg=0.0, cig_baseline=baseline,
                             **BASE)
    step = make_train_step(graphdef, tx, config)
    _, _, metrics = step(copy(state), init_opt_state(tx, state), batch, jnp.int32(0))
    gates[baseline] = float(metrics["gate_fraction"])
    if baseline == "trainer":
      for key in ("gate_fraction", "cig_mean_pos", "cig_std_pos", "cig_mean_neg", "cig_std_neg"):
        assert float(metrics[key]) == 0.0, key
  # Against logp_old the sampler's noise alone opens the gate on some tokens.
  assert gates["sampler"] > 0.1


@pytest.mark.parametrize("name", ["grpo", "amrsd"])
def test_truncated_importance_sampling_matches_numpy_through_the_step(split_tiny, name):
  graphdef, state = split_tiny
  batch = _on_policy_batch(graphdef, state, noise=0.1)
  cap = 1.02
  config = AlgorithmConfig(name=name, tis_cap=cap, beta0=0.0, **BASE)
  grads, metrics = make_grad_fn(graphdef, config)(state, batch, 0)
  # Reference (docs/algorithms.md 1): w_t = min(exp(lS_t - logp_old_t), C), a constant.
  r = batch["response_mask"].shape[1]
  model = nnx.merge(graphdef, state)
  logits = np.asarray(model(jnp.asarray(batch["student_ids"]), jnp.asarray(batch["student_mask"])),
                      np.float64)[:, -r - 1:-1]
  logz = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
  ls = np.take_along_axis(logits, batch["student_ids"][:, -r:, None], -1)[..., 0] - logz
  m, old = batch["response_mask"], batch["logp_old"].astype(np.float64)
  rw = batch["rewards"].reshape(-1, 4)
  adv = ((rw - rw.mean(1, keepdims=True)) / (rw.std(1, ddof=1, keepdims=True) + 1e-6)).reshape(-1)
  w = np.minimum(np.exp(ls - old), cap)
  assert 0 < ((w == cap) * m).sum() < m.sum()  # some tokens are truncated, not all
  rho = np.exp(ls - old)
  a = adv[:, None]
  expect = -(m * w * np.minimum(rho * a, np.clip(rho, 0.8, 1.2) * a)).sum() / m.sum()
  assert float(metrics["loss"]) == pytest.approx(expect, rel=1e-4)
  assert float(metrics["tis_weight_mean"]) == pytest.approx((w * m).sum() / m.sum(), rel=1e-5)
  # The weight is detached: gradients are those of the loss with w held constant.
  def held(state):
    lp, _ = logprobs.token_logprobs((graphdef, state), batch["student_ids"],
                                    batch["student_mask"], batch["student_ids"].shape[1] - r)
    rho = jnp.exp(lp - batch["logp_old"])
    term = jnp.minimum(rho * a, jnp.clip(rho, 0.8, 1.2) * a)
    return -jnp.sum(m * jnp.asarray(w, jnp.float32) * term) / m.sum()
  for x, y in zip(jax.tree.leaves(grads), jax.tree.leaves(jax.grad(held)(state)), strict=True):
    np.testing.assert_allclose(x, y, atol=2e-6)


def _numpy_sdpo_loss(graphdef, state, batch, k, alpha, clip):
  model = nnx.merge(graphdef, state)
  r = batch["response_mask"].shape[1]
  def logp_all(ids, mask):
    logits = np.asarray(model(jnp.asarray(ids), jnp.asarray(mask)), np.float64)[:, -r - 1:-1]
    m = logits.max(-1, keepdims=True)
    return logits - m - np.log(np.exp(logits - m).sum(-1, keepdims=True))
  s, t = logp_all(batch["student_ids"], batch["student_mask"]), \
      logp_all(batch["teacher_ids"], batch["teacher_mask"])
  ids = np.argsort(-s, -1)[..., :k]
  def with_tail(x):
    return np.concatenate([x, np.log1p(-np.exp(x).sum(-1, keepdims=True))], -1)
  ps, pt = with_tail(np.take_along_axis(s, ids, -1)), with_tail(np.take_along_axis(t, ids, -1))
  mix = np.log((1 - alpha) * np.exp(ps) + alpha * np.exp(pt))
  kl = lambda p, q: (np.exp(p) * (p - q)).sum(-1)
  div = (1 - alpha) * kl(ps, mix) + alpha * kl(pt, mix)
  sampled = np.take_along_axis(s, batch["student_ids"][:, -r:, None], -1)[..., 0]
  w = np.minimum(np.exp(sampled - batch["logp_old"]), clip)
  mask = batch["response_mask"] * batch["has_hint"][:, None]
  return (div * w * mask).sum() / mask.sum()


def test_sdpo_loss_matches_numpy_in_both_teacher_layouts(split_tiny):
  graphdef, state = split_tiny
  batch = _on_policy_batch(graphdef, state, noise=0.5)
  expect = _numpy_sdpo_loss(graphdef, state, batch, 10, 0.5, 2.0)
  results = []
  for teacher_forward in ("separate", "stacked"):
    config = AlgorithmConfig(name="sdpo", sdpo_topk=10, teacher_forward=teacher_forward, **BASE)
    grads, metrics = make_grad_fn(graphdef, config)(state, batch, 0)
    assert float(metrics["loss"]) == pytest.approx(expect, rel=1e-4)
    results.append(grads)
  for a, b in zip(jax.tree.leaves(results[0]), jax.tree.leaves(results[1])):
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_train_step_updates_reports_and_skips_non_finite(split_tiny):
  graphdef, state = split_tiny
  config = AlgorithmConfig(name="amrsd", **BASE)
  tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3))
  train_step = make_train_step(graphdef, tx, config)
  batch = _on_policy_batch(graphdef, state)
  copy = lambda tree: jax.tree.map(jnp.copy, tree)
  new_state, opt_state, metrics = train_step(copy(state), init_opt_state(tx, state), batch, 1)
  assert set(metrics) == set(metric_names(config))
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert float(metrics["update_skipped"]) == 0.0
  assert float(metrics["reward_mean"]) == pytest.approx(0.25)
  assert float(metrics["accuracy"]) == pytest.approx(0.25)
  assert float(metrics["zero_variance_fraction"]) == pytest.approx(0.5)
  assert float(metrics["hint_fraction"]) == pytest.approx(0.75)
  assert float(metrics["teacher_token_mismatch"]) == 0.0
  assert float(metrics["response_length_mean"]) == pytest.approx(batch["response_mask"].sum(1).mean())
  assert 0 < float(metrics["logprob_gap_max"]) < 0.3
  changed = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(new_state),
                                                      jax.tree.leaves(state))]
  assert all(changed)
  # The guard's norms, from the weights before and after (numpy, float64).
  leaves = lambda tree: [np.asarray(x, np.float64) for x in jax.tree.leaves(tree)]
  before, after = leaves(state), leaves(new_state)
  assert float(metrics["param_norm"]) == pytest.approx(
      np.sqrt(sum((x ** 2).sum() for x in before)), rel=1e-5)
  assert float(metrics["update_norm"]) == pytest.approx(
      np.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(after, before))), rel=1e-4)

  bad = dict(batch, rewards=np.array([np.nan, 0, 0, 1, 0, 0, 0, 1], np.float32))
  kept = copy(new_state)
  after, _, bad_metrics = train_step(copy(new_state), opt_state, bad, 2)
  assert float(bad_metrics["update_skipped"]) == 1.0
  _assert_trees_identical(after, kept)


def test_only_the_trainable_subset_moves(split_tiny):
  graphdef, state = split_tiny
  trainable = nnx.All(nnx.Param, nnx.PathContains("w_up"))
  tx = optax.sgd(0.1)
  opt_state = init_opt_state(tx, state, trainable)
  train_step = make_train_step(graphdef, tx, AlgorithmConfig(name="grpo", **BASE),
                               trainable=trainable)
  batch = _on_policy_batch(graphdef, state)
  new_state, _, _ = train_step(jax.tree.map(jnp.copy, state), opt_state, batch, 0)
  for path, value in nnx.to_flat_state(new_state):
    old = state[path[0]][...]
    moved = not np.array_equal(np.asarray(value[...]), np.asarray(old))
    assert moved == (path[0] == "w_up"), path


def test_step_loss_does_not_depend_on_padding(split_tiny):
  graphdef, state = split_tiny
  grad_fn = make_grad_fn(graphdef, AlgorithmConfig(name="amrsd", teacher_forward="stacked",
                                                   **BASE))
  losses_ = []
  for extra in (0, 6):
    batch = make_batch(0, extra_pad=extra)
    losses_.append(float(grad_fn(state, batch, 0)[1]["loss"]))
  assert losses_[0] == pytest.approx(losses_[1], abs=1e-6)


def test_bad_batches_are_rejected_with_the_key_and_shapes():
  batch = make_batch()
  amrsd = AlgorithmConfig(name="amrsd", **BASE)
  with pytest.raises(ValueError, match="missing \\['teacher_ids'"):
    check_batch({k: v for k, v in batch.items() if k != "teacher_ids"}, amrsd)
  with pytest.raises(ValueError, match="logp_old"):
    check_batch(dict(batch, logp_old=batch["logp_old"][:, :3]), amrsd)
  with pytest.raises(ValueError, match="group_size=3"):
    check_batch(batch, dataclasses.replace(amrsd, group_size=3))
  with pytest.raises(ValueError, match="logp_ref"):
    check_batch(batch, dataclasses.replace(amrsd, kl_coef=1e-3))
  check_batch({k: v for k, v in batch.items() if not k.startswith("teacher")},
              AlgorithmConfig(name="grpo", **BASE))


def test_config_rejects_bad_values_with_the_choices():
  with pytest.raises(ValueError, match="grpo, rlsd, amrsd, sdpo, opsd"):
    AlgorithmConfig(name="ppo")
  with pytest.raises(ValueError, match="cig_mode"):
    AlgorithmConfig(cig_mode="mult")
  with pytest.raises(ValueError, match="tau_neg"):
    AlgorithmConfig(tau_neg=-0.1)
  with pytest.raises(ValueError, match="trainer, sampler"):
    AlgorithmConfig(cig_baseline="old")
  with pytest.raises(ValueError, match="tis_cap"):
    AlgorithmConfig(tis_cap=-1.0)


@pytest.mark.parametrize("name,agg", [("grpo", "token-mean"), ("amrsd", "token-mean"),
                                      ("grpo", "seq-mean-token-mean")])
def test_micro_batches_give_the_full_batch_update(split_tiny, name, agg):
  graphdef, state = split_tiny
  config = AlgorithmConfig(name=name, group_size=4, loss_agg=agg, tau_pos=0.0, tau_neg=0.0)
  tx = optax.sgd(1.0)
  results = []
  for micro in (1, 2):
    step = make_train_step(graphdef, tx, config, micro_batches=micro)
    params = jax.tree.map(jnp.copy, state)
    new, _, metrics = step(params, init_opt_state(tx, params), make_batch(seed=3), jnp.int32(0))
    results.append((new, metrics))
  (full, m_full), (acc, m_acc) = results
  for (path, a), (_, b) in zip(full.flat_state(), acc.flat_state()):
    np.testing.assert_allclose(np.asarray(b[...]), np.asarray(a[...]), rtol=1e-5, atol=1e-6,
                               err_msg=str(path))
  for key in ("loss", "grad_norm", "logprob_gap_max"):
    np.testing.assert_allclose(float(m_acc[key]), float(m_full[key]), rtol=1e-4, atol=1e-6)


def test_micro_batches_must_hold_whole_groups(split_tiny):
  graphdef, state = split_tiny
  tx = optax.sgd(1.0)
  step = make_train_step(graphdef, tx, AlgorithmConfig(name="grpo", group_size=4),
                         micro_batches=4)
  with pytest.raises(ValueError, match="do not split into 4 micro-batches of whole groups"):
    step(jax.tree.map(jnp.copy, state), init_opt_state(tx, state), make_batch(), jnp.int32(0))
