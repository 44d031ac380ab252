"""No configuration passes validation and fails later: every algorithm field at its legal
extremes (CHOICES, RULES), through the run config's validation, the trainer's weight
copies and one jitted train step on the tiny model, ends in a finite, applied update."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from amrsd import config as config_lib
from amrsd.algorithms import registry
from amrsd.algorithms.config import CHOICES, METHODS, RULES
from amrsd.algorithms.step import init_opt_state, make_train_step
from amrsd.teacher_weights import WeightCopies
from tests.algorithms.conftest import make_batch

INF = float("inf")
# The smallest and the largest legal value of every numeric field (RULES) and std_norm.
LOW = dict(eps_lo=0.0, eps_hi=0.0, eps_w=0.0, kl_coef=0.0, beta0=0.0, lam0=0.0, tau_pos=0.0,
           tau_neg=0.0, kappa=0.0, sdpo_topk=1, opsd_topk=1, sdpo_alpha=0.0, opsd_beta=0.0,
           sdpo_is_clip=1e-6, success_threshold=-1e6, logit_chunk=1, anneal_steps=1,
           rlsd_anneal_steps=1, ema_rate=1e-6, tis_cap=0.0, std_norm=False)
HIGH = dict(eps_lo=0.999, eps_hi=1e6, eps_w=0.999, kl_coef=1e3, beta0=1e6, lam0=1.0,
            tau_pos=INF, tau_neg=INF, kappa=1e6, sdpo_topk=10**6, opsd_topk=10**6,
            sdpo_alpha=1.0, opsd_beta=1.0, sdpo_is_clip=INF, success_threshold=1e6,
            logit_chunk=10**9, anneal_steps=10**9, rlsd_anneal_steps=10**9, ema_rate=1.0,
            tis_cap=INF, std_norm=True)
CASES = list(itertools.product(METHODS, ("low", "high")))


def _choices(index, method):
  """The index-th value of every choice field (so the cases cover all of them); the
  stacked teacher forward only where the teacher runs on the policy's own weights."""
  picked = {f: values[index % len(values)] for f, values in CHOICES.items() if f != "name"}
  if registry.teacher_weights(method, picked["teacher_weights"]) != "current":
    picked["teacher_forward"] = "separate"
  if registry.get(method).teacher == "none":
    picked["teacher_weights"] = ("default", "current")[index % 2]
  return picked


def test_the_cases_cover_every_field_and_choice():
  assert set(LOW) == set(HIGH) == set(RULES) - {"group_size"} | {"std_norm"}
  for field, values in CHOICES.items():
    if field != "name":
      assert {_choices(i, m)[field] for i, (m, _) in enumerate(CASES)} == set(values), field


@pytest.mark.parametrize("index", range(len(CASES)))
def test_legal_extremes_run_one_step(split_tiny, index):
  method, extreme = CASES[index]
  graphdef, params = split_tiny
  config = config_lib.default_config()
  config.rollout.group_size = 1 if extreme == "low" and method == "opsd" else (
      2 if extreme == "low" else 8)
  config.algorithm.update(name=method, **(LOW if extreme == "low" else HIGH),
                          **_choices(index, method))
  config_lib.validate(config)
  algo = config_lib.algorithm_config(config)
  params = jax.tree.map(jnp.copy, params)
  copies = WeightCopies(algo, graphdef, params, nnx.Param)
  batch = {k: jnp.asarray(v) for k, v in make_batch(index).items()}
  if algo.kl_coef > 0:
    batch["logp_ref"] = copies.reference_logprobs(params, batch)
  tx = optax.sgd(1e-3)
  step = make_train_step(graphdef, tx, algo)
  _, _, metrics = step(params, init_opt_state(tx, params), batch, jnp.int32(3),
                       copies.teacher_state())
  assert float(metrics["update_skipped"]) == 0.0, metrics
  assert all(np.isfinite(float(v)) for v in metrics.values()), metrics
