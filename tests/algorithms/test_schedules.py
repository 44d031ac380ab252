"""Annealing schedules against numpy."""

import jax
import numpy as np
import pytest

from amrsd.algorithms.schedules import anneal


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_matches_numpy_and_reaches_exactly_zero(schedule):
  k_total = 10
  for k in range(0, 15):
    frac = min(k / k_total, 1.0)
    expect = 1 - frac if schedule == "linear" else 0.5 * (1 + np.cos(np.pi * frac))
    got = float(anneal(k, k_total, schedule))
    assert got == pytest.approx(expect, abs=1e-6)
    if k >= k_total:
      assert got == 0.0
  assert float(anneal(0, k_total, schedule)) == 1.0


def test_no_annealing_keeps_full_strength_past_the_horizon():
  """The no-annealing ablation: the strength never fades, so AMR-SD never becomes GRPO."""
  for k in (0, 5, 10, 50):
    assert float(anneal(k, 10, "none")) == 1.0
  assert float(jax.jit(lambda k: anneal(k, 10, "none"))(30)) == 1.0


def test_traced_step_matches_python_step():
  traced = jax.jit(lambda k: anneal(k, 8, "cosine"))(3)
  assert float(traced) == float(anneal(3, 8, "cosine"))


def test_rejects_unknown_schedule_and_bad_length():
  with pytest.raises(ValueError, match="linear, cosine or none"):
    anneal(0, 10, "exp")
  with pytest.raises(ValueError, match="total_steps"):
    anneal(0, 0)
