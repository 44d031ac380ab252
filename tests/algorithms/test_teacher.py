"""The teacher program: which rows need the teacher, its slots, and that running it apart
(on those rows only) leaves the update exactly as the in-step teacher makes it."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from amrsd.algorithms import teacher as teacher_lib
from amrsd.algorithms.config import AlgorithmConfig
from amrsd.algorithms.step import make_grad_fn, make_train_step
from tests.algorithms.conftest import make_batch

# Two groups of 4: group 0 has one success (signal), group 1 none (all advantages 0).
REWARDS = np.array([1, 0, 0, 0, 0, 0, 0, 0], np.float32)
HINTS = np.array([1, 1, 0, 1, 1, 1, 1, 0], np.float32)


def config(name, **kw):
  return AlgorithmConfig(name=name, group_size=4, anneal_steps=10, rlsd_anneal_steps=10, **kw)


@pytest.mark.parametrize("name, step, expected", [
    # AMR-SD and RLSD: hinted rows of groups with signal, while the strength is above 0.
    ("amrsd", 0, [1, 1, 0, 1, 0, 0, 0, 0]),
    ("rlsd", 3, [1, 1, 0, 1, 0, 0, 0, 0]),
    ("amrsd", 10, [0] * 8),   # annealed to 0: the method is GRPO, no teacher
    ("rlsd", 12, [0] * 8),
    # The distillation methods use every row with a context, whatever its advantage.
    ("sdpo", 0, HINTS.tolist()),
    ("opsd", 50, HINTS.tolist()),
])
def test_needed_rows(name, step, expected):
  need = teacher_lib.needed_rows(config(name), HINTS, REWARDS, step)
  np.testing.assert_array_equal(np.asarray(need), np.array(expected, bool))


def test_needed_rows_follow_the_modulated_side_and_beta0():
  # Row 0 succeeds (A > 0), rows 1-3 fail (A < 0).
  pos = teacher_lib.needed_rows(config("amrsd", sides="pos_only"), HINTS, REWARDS, 0)
  neg = teacher_lib.needed_rows(config("amrsd", sides="neg_only"), HINTS, REWARDS, 0)
  off = teacher_lib.needed_rows(config("amrsd", beta0=0.0), HINTS, REWARDS, 0)
  np.testing.assert_array_equal(np.asarray(pos), [1, 0, 0, 0, 0, 0, 0, 0])
  np.testing.assert_array_equal(np.asarray(neg), [0, 1, 0, 1, 0, 0, 0, 0])
  assert not np.asarray(off).any()


def test_row_bucket_is_the_next_ladder_size_per_micro_batch():
  sdpo = config("sdpo")
  assert teacher_lib.row_bucket(sdpo, HINTS, REWARDS, 0) == 6       # 6 rows -> 6
  assert teacher_lib.row_bucket(sdpo, HINTS, REWARDS, 0, micro_batches=2) == 3  # 3 and 3
  assert teacher_lib.row_bucket(config("amrsd"), HINTS, REWARDS, 0) == 3        # 3 -> 3
  assert teacher_lib.row_bucket(config("amrsd"), HINTS, REWARDS, 0, micro_batches=2) == 3
  five = np.array([1, 1, 1, 1, 1, 0, 0, 0], np.float32)
  assert teacher_lib.row_bucket(sdpo, five, REWARDS, 0) == 6                    # 5 -> 6
  assert teacher_lib.row_bucket(config("amrsd"), HINTS, REWARDS, 10) == 0
  assert teacher_lib.row_bucket(sdpo, np.zeros(8), REWARDS, 0) == 0


def _batch(hints=HINTS):
  batch = make_batch(3)
  batch["rewards"], batch["has_hint"] = REWARDS, np.asarray(hints, np.float32)
  return batch


SPARSE = [1, 0, 0, 1, 0, 1, 0, 0]  # 2 rows per micro-batch of 4: 2 slots each


@pytest.mark.parametrize("name, micro_batches, hints, slots", [
    ("amrsd", 1, HINTS, 3), ("amrsd", 2, HINTS, 3), ("rlsd", 1, HINTS, 3),
    ("sdpo", 1, HINTS, 6), ("sdpo", 2, SPARSE, 2), ("opsd", 1, SPARSE, 3)])
def test_teacher_program_on_needed_rows_gives_the_in_step_update(split_tiny, name,
                                                                 micro_batches, hints, slots):
  graphdef, state = split_tiny
  c = config(name, tau_pos=0.0, tau_neg=0.0)  # every CIG above 0 opens the gate
  batch, step = _batch(hints), jnp.int32(2)
  rows = teacher_lib.row_bucket(c, batch["has_hint"], batch["rewards"], 2, micro_batches)
  assert rows == slots
  teacher_fn = teacher_lib.make_teacher_fn(graphdef, c, micro_batches=micro_batches)
  out = teacher_fn(state, batch, step, rows=rows)
  need = np.asarray(teacher_lib.needed_rows(c, batch["has_hint"], batch["rewards"], 2))
  np.testing.assert_array_equal(np.asarray(out["teacher_rows"]), need.astype(np.float32))
  value = np.asarray(out["teacher_logp" if name in ("amrsd", "rlsd") else "teacher_hidden"])
  assert not value[~need].any() and value[need].any()

  grad_fn = make_grad_fn(graphdef, c)
  fused_grads, fused = grad_fn(state, batch, step)
  split_grads, split = grad_fn(state, {**batch, **out}, step)
  for key in fused:
    np.testing.assert_allclose(float(split[key]), float(fused[key]), rtol=2e-5, atol=1e-6,
                               err_msg=key)
  for a, b in zip(jax.tree.leaves(split_grads), jax.tree.leaves(fused_grads)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=1e-7)
  if name == "amrsd":
    assert float(fused["gate_fraction"]) > 0  # the teacher does change the update here


def test_without_needed_rows_the_teacher_program_runs_no_forward(split_tiny):
  graphdef, state = split_tiny
  c = config("amrsd")
  batch = _batch()
  for key in ("teacher_ids", "teacher_mask"):  # an annealed step builds no teacher rows
    del batch[key]
  batch["has_hint"] = np.zeros(8, np.float32)
  out = teacher_lib.make_teacher_fn(graphdef, c)(state, batch, jnp.int32(10), rows=0)
  assert not np.asarray(out["teacher_rows"]).any() and not np.asarray(out["teacher_logp"]).any()
  tx = optax.sgd(1e-3)
  step = make_train_step(graphdef, tx, c)
  _, _, metrics = step(jax.tree.map(jnp.copy, state), tx.init(state), {**batch, **out},
                       jnp.int32(10))
  assert np.isfinite(float(metrics["loss"])) and float(metrics["gate_fraction"]) == 0


def test_other_teacher_weights_run_in_the_teacher_program(split_tiny):
  graphdef, state = split_tiny
  c = config("opsd")
  batch, step = _batch(), jnp.int32(0)
  other = jax.tree.map(lambda p: p * 0.5, state)  # any other weights: the trainable part
  teacher_fn = teacher_lib.make_teacher_fn(graphdef, c)
  own = teacher_fn(state, batch, step, rows=8)["teacher_hidden"]
  theirs = teacher_fn(state, batch, step, other, rows=8)["teacher_hidden"]
  assert not np.allclose(np.asarray(own), np.asarray(theirs))
  grad_fn = make_grad_fn(graphdef, c)
  _, fused = grad_fn(state, batch, step, other)
  _, split = grad_fn(state, {**batch, **teacher_fn(state, batch, step, other, rows=8)}, step,
                     other)
  np.testing.assert_allclose(float(split["loss"]), float(fused["loss"]), rtol=1e-5)


def test_a_method_without_teacher_has_no_teacher_program(split_tiny):
  with pytest.raises(ValueError, match="grpo.*no teacher"):
    teacher_lib.make_teacher_fn(split_tiny[0], config("grpo"))
