"""The weight copies beside the policy: which exist, the EMA, the teacher forward on a
copy, and the KL reference log-probs, on the tiny model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from amrsd import models
from amrsd.algorithms import logprobs
from amrsd.algorithms.config import AlgorithmConfig
from amrsd.algorithms.step import make_grad_fn
from amrsd.teacher_weights import WeightCopies
from tests.algorithms.conftest import make_batch
from tests.conftest import tiny_config


def _copies(name, trainable=nnx.Param, lora=False, **fields):
  model = models.Decoder(tiny_config(), rngs=nnx.Rngs(0))
  if lora:
    model.add_lora(2, 4.0, ("wq", "w_up"), rngs=nnx.Rngs(1))
  graphdef, params = nnx.split(model)
  algo = AlgorithmConfig(name=name, group_size=4, **fields)
  return graphdef, params, WeightCopies(algo, graphdef, params, trainable)


def _leaves(state):
  return [np.asarray(x) for x in jax.tree.leaves(state)]


@pytest.mark.parametrize("name,fields,kept", [
    ("amrsd", {}, []), ("grpo", {}, []), ("rlsd", {}, []), ("sdpo", {}, ["ema"]),
    ("opsd", {}, ["initial"]), ("opsd", {"kl_coef": 0.1}, ["initial"]),
    ("sdpo", {"kl_coef": 0.1}, ["ema", "initial"]), ("grpo", {"kl_coef": 0.1}, ["initial"]),
    ("amrsd", {"teacher_weights": "ema"}, ["ema"]), ("sdpo", {"teacher_weights": "current"}, [])])
def test_a_run_keeps_only_the_copies_it_reads(name, fields, kept):
  _, params, copies = _copies(name, **fields)
  assert sorted(copies.arrays) == kept
  if copies.kind == "current":
    assert copies.teacher_state() is None
  else:
    assert copies.teacher_state() is copies.arrays[copies.kind]
  # OPSD's teacher and the KL reference are one copy.
  for leaf, param in zip(_leaves(copies.arrays.get("initial", params)), _leaves(params)):
    assert np.array_equal(leaf, param)


def test_ema_moves_by_the_rate_in_float32_and_only_the_trainable_part_is_copied():
  lora_filter = nnx.OfType(models.LoRAParam)
  graphdef, params, copies = _copies("sdpo", trainable=lora_filter, lora=True, ema_rate=0.25)
  adapters, _ = nnx.split_state(params, lora_filter, ...)
  assert len(jax.tree.leaves(copies.arrays["ema"])) == len(jax.tree.leaves(adapters)) == 4
  before = _leaves(copies.arrays["ema"])
  moved = jax.tree.map(lambda p: p + 1.0, params)
  copies.after_update(moved)
  theta = _leaves(nnx.split_state(moved, lora_filter, ...)[0])
  for new, old, t in zip(_leaves(copies.arrays["ema"]), before, theta, strict=True):
    assert new.dtype == np.float32
    np.testing.assert_allclose(new, 0.75 * old + 0.25 * t, rtol=1e-6, atol=1e-7)


def test_the_teacher_runs_on_the_copy_it_is_given():
  """CIG statistics of the step against lT computed on the copy's own model."""
  graphdef, params, _ = _copies("amrsd")
  other = jax.tree.map(lambda p: p + 0.05 * jnp.sin(7.0 * p), params)
  batch = make_batch(3)
  # CIG against logp_old, so the reference needs only the teacher's log-probs.
  algo = AlgorithmConfig(name="amrsd", group_size=4, logit_chunk=7, cig_baseline="sampler")
  r = batch["response_mask"].shape[1]
  for teacher, state in ((None, params), (other, other)):
    _, metrics = make_grad_fn(graphdef, algo)(params, batch, 0, teacher)
    lt, _ = logprobs.token_logprobs((graphdef, state), batch["teacher_ids"],
                                    batch["teacher_mask"], batch["teacher_ids"].shape[1] - r)
    # Rewards [1, 0, 0, 1 | 0, 0, 0, 0]: A > 0 on rows 0 and 3 (both have a hint).
    rows = np.array([1, 0, 0, 1, 0, 0, 0, 0], bool) & (batch["has_hint"] > 0)
    sel = batch["response_mask"] * rows[:, None]
    cig = np.asarray(lt, np.float64) - batch["logp_old"]
    assert float(metrics["cig_mean_pos"]) == pytest.approx((cig * sel).sum() / sel.sum(),
                                                           rel=1e-5)


def test_reference_logprobs_are_the_initial_weights_own():
  graphdef, params, copies = _copies("grpo", kl_coef=0.1)
  batch = {k: jnp.asarray(v) for k, v in make_batch(4).items()}
  moved = jax.tree.map(lambda p: p * 1.5, params)
  r = batch["response_mask"].shape[1]
  expect, _ = logprobs.token_logprobs((graphdef, params), batch["student_ids"],
                                      batch["student_mask"], batch["student_ids"].shape[1] - r)
  got = copies.reference_logprobs(moved, batch)
  np.testing.assert_allclose(got, np.asarray(expect) * batch["response_mask"], rtol=1e-5,
                             atol=1e-6)
