"""Group advantages against numpy."""

import numpy as np
import pytest

from amrsd.algorithms.advantages import group_advantages


def _numpy_grpo(rewards, g, std_norm):
  r = np.asarray(rewards, np.float64).reshape(-1, g)
  out = r - r.mean(1, keepdims=True)
  if std_norm:
    out = out / (r.std(1, ddof=1, keepdims=True) + 1e-6)
  out[np.all(r == r[:, :1], axis=1)] = 0.0
  return out.reshape(-1)


@pytest.mark.parametrize("std_norm", [True, False])
def test_matches_numpy_group_major(std_norm):
  rewards = np.array([1, 0, 0, 1, 0.5, 0.2, 0.9, 0.1, 0, 0, 0, 1], np.float32)
  adv, zero = group_advantages(rewards, 4, std_norm=std_norm)
  np.testing.assert_allclose(adv, _numpy_grpo(rewards, 4, std_norm), rtol=1e-6, atol=1e-6)
  assert not np.any(zero)


def test_groups_are_read_group_major():
  # Prompt 0's rollouts come first: only its group has a reward spread.
  adv, zero = group_advantages(np.array([1, 0, 0.3, 0.3], np.float32), 2)
  assert adv[0] > 0 > adv[1]
  assert list(zero) == [False, True]


def test_all_equal_rewards_give_exactly_zero_and_are_reported():
  rewards = np.array([0.1, 0.1, 0.1, 0.7, 0.7, 0.7, 1.0, 0.0, 1.0], np.float32)
  adv, zero = group_advantages(rewards, 3)
  assert list(zero) == [True, True, False]
  assert np.all(np.asarray(adv[:6]) == 0.0)


def test_group_of_one_has_no_signal():
  adv, zero = group_advantages(np.array([1.0, 0.0], np.float32), 1)
  assert np.all(np.asarray(adv) == 0.0) and np.all(zero)


def test_rejects_rewards_that_do_not_split_into_groups():
  with pytest.raises(ValueError, match="group_size=4"):
    group_advantages(np.zeros(6, np.float32), 4)
