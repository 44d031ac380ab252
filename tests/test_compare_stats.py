"""amrsd.compare_stats: intervals against hand computations and collapse detection."""

import numpy as np
import pytest

from amrsd import compare_stats as stats


def test_wilson_matches_hand_computation():
  # 8 of 10, z = 1.96: center (0.8 + z^2/20) / (1 + z^2/10), half-width
  # z sqrt(0.016 + z^2/400) / (1 + z^2/10) -> [0.4902, 0.9433] (textbook value).
  lo, hi = stats.wilson(8, 10)
  assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
  lo, hi = stats.wilson(0, 20)
  assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(0.1611, abs=1e-4)
  with pytest.raises(ValueError, match="n=0"):
    stats.wilson(0, 0)


def test_bootstrap_degenerate_and_seed_resampling():
  assert stats.bootstrap_ci(np.ones((2, 30))) == (1.0, 1.0, 1.0)
  # One seed all right, one all wrong: resampled seed pairs give means 0, 0.5, 1 with
  # probabilities 1/4, 1/2, 1/4, so the 2.5 % / 97.5 % quantiles are 0 and 1.
  mean, lo, hi = stats.bootstrap_ci(np.stack([np.ones(40), np.zeros(40)]), resamples=4000)
  assert (mean, lo, hi) == (0.5, 0.0, 1.0)


def test_bootstrap_width_matches_binomial_standard_error():
  rng = np.random.default_rng(1)
  scores = (rng.random((1, 400)) < 0.3).astype(float)
  p = scores.mean()
  mean, lo, hi = stats.bootstrap_ci(scores, resamples=4000, seed=3)
  assert mean == p and lo < p < hi
  assert hi - lo == pytest.approx(2 * 1.96 * np.sqrt(p * (1 - p) / 400), rel=0.12)


def test_paired_difference():
  a = np.array([[1, 0, 1, 1], [0, 1, 1, 0]], float)
  assert stats.paired_difference_ci(a, a) == (0.0, 0.0, 0.0)
  mean, lo, hi = stats.paired_difference_ci(a, np.zeros_like(a), resamples=500)
  assert mean == pytest.approx(0.625) and 0 <= lo <= mean <= hi <= 1
  with pytest.raises(ValueError, match="same seeds"):
    stats.paired_difference_ci(a, a[:1])


def test_moving_average_and_collapse():
  np.testing.assert_allclose(stats.moving_average([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5])
  late_drop = stats.collapse([0, 4, 8, 12], [0.2, 0.5, 0.6, 0.45], margin=0.1)
  assert late_drop == {"best": 0.6, "best_step": 8, "final": 0.45, "final_step": 12,
                       "drop": pytest.approx(0.15), "collapsed": True}
  assert not stats.collapse([0, 4, 8], [0.2, 0.6, 0.55], margin=0.1)["collapsed"]
  assert stats.collapse([0, 4], [0.3, 0.7], margin=0.1)["drop"] == 0.0
  with pytest.raises(ValueError, match="equally long"):
    stats.collapse([0, 1], [0.1], margin=0.1)


def test_steps_to_reach_a_reward_level_uses_the_trailing_mean(tmp_path):
  from tests.fixtures.comparison import write_run
  write_run(tmp_path, "fast", 5, [0.1, 0.5, 0.6, 0.8, 0.9], {})
  write_run(tmp_path, "slow", 5, [0.1, 0.1, 0.2, 0.2, 0.3], {})
  runs = [str(tmp_path / "fast"), str(tmp_path / "slow")]
  # fast: step 4 averages 0.1, 0.5, 0.6, 0.8 = 0.5; step 3 is 1.2 / 3 = 0.4.
  assert stats.steps_to_reach(runs, 0.5) == [4, None]
  assert stats.steps_to_reach(runs, 0.3) == [2, None]   # (0.1 + 0.5) / 2 = 0.3
  assert stats.steps_to_reach(runs, 0.1) == [1, 1]
