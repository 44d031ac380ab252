"""The divergence signals on hand-made metrics, and the learning-rate warning."""

import math

import pytest

from amrsd import config as config_lib
from amrsd.divergence import eval_signal, learning_rate_warning, step_signal, stop_message

GUARD = config_lib.default_config().guard
HEALTHY = {"entropy": 1.5, "grad_norm": 0.3, "zero_variance_fraction": 0.5,
           "update_norm": 0.01, "param_norm": 100.0}
V = 49152


def _signal(**changes):
  return step_signal({**HEALTHY, **changes}, step=3, guard=GUARD, vocab_size=V)


def test_a_healthy_step_passes():
  assert _signal() is None


def test_near_uniform_entropy_fires_against_log_vocab():
  found = _signal(entropy=10.8)
  assert found.signal == "entropy" and found.judges_input
  assert found.threshold == pytest.approx(0.9 * math.log(V))
  assert _signal(entropy=0.89 * math.log(V)) is None


def test_zero_gradient_fires_only_with_reward_variance():
  assert _signal(grad_norm=0.0).signal == "grad_norm"
  assert _signal(grad_norm=0.0, zero_variance_fraction=1.0) is None


def test_an_update_large_against_the_weights_fires():
  found = _signal(update_norm=1.3e6, param_norm=500.0)
  assert found.signal == "update_norm / param_norm" and not found.judges_input
  assert found.value == pytest.approx(1.3e6 / 500.0)
  assert _signal(update_norm=9.0, param_norm=100.0) is None


def test_held_out_accuracy_collapse():
  kw = dict(step=4, guard=GUARD, problems=64)
  assert eval_signal(0.1, 0.5, **kw).signal == "eval_accuracy"     # fell by 0.4
  assert eval_signal(0.0, 0.15, **kw).signal == "eval_accuracy"    # to 0 from 0.15
  assert eval_signal(0.0, 0.05, **kw) is None                      # base too low to judge
  assert eval_signal(0.3, 0.5, **kw) is None
  assert eval_signal(0.0, 0.5, step=4, guard=GUARD, problems=4) is None  # too few problems
  assert eval_signal(0.0, None, **kw) is None                      # nothing to compare


def test_the_stop_message_says_what_where_and_what_to_do():
  message = stop_message(_signal(entropy=10.8), 2, "/w/checkpoints", 1e6)
  assert message.startswith("divergence at step 3: entropy = 10.8")
  assert "last good checkpoint is step 2 in /w/checkpoints" in message
  assert "Lower train.learning_rate (now 1e+06)" in message
  assert "starts over" in stop_message(_signal(entropy=10.8), None, "/w", 1e6)


def test_learning_rate_warning_outside_the_recipe_range():
  config = config_lib.default_config()
  assert learning_rate_warning(config) is None
  config.train.learning_rate = 1e6
  assert "learning_rate=1e+06 is far outside" in learning_rate_warning(config)
  config.train.learning_rate = 5e-3
  config.train.trainable = "lora"
  assert learning_rate_warning(config) is None


def test_guard_fields_are_validated():
  config = config_lib.default_config()
  config.guard.max_entropy_fraction = 1.5
  with pytest.raises(ValueError, match=r"config.guard.max_entropy_fraction=1.5 must be in \(0, 1\]"):
    config_lib.validate(config)
