"""amrsd.rng: one key stream per (seed, step, purpose)."""

import jax
import numpy as np
import pytest

from amrsd import rng


def _data(key):
  return np.asarray(jax.random.key_data(key))


def test_purpose_ids_are_stable_numbers():
  # CRC32 of the name, not Python's per-process hash(): fixed across runs and hosts.
  assert rng.purpose_id("rollout") == 1956693391
  assert rng.purpose_id("reflect") != rng.purpose_id("rollout")


def test_streams_differ_by_purpose_step_and_seed():
  base = _data(rng.stream(0, 5, "rollout"))
  assert np.array_equal(base, _data(rng.stream(0, 5, "rollout")))
  for other in (rng.stream(0, 5, "reflect"), rng.stream(0, 6, "rollout"),
                rng.stream(1, 5, "rollout")):
    assert not np.array_equal(base, _data(other))


def test_traced_step_gives_the_same_key():
  traced = jax.jit(lambda step: jax.random.key_data(rng.stream(3, step, "rollout")))(7)
  assert np.array_equal(np.asarray(traced), _data(rng.stream(3, 7, "rollout")))


def test_rollout_keys_do_not_depend_on_other_consumers():
  """A run with reflection (extra "reflect" draws) samples the same rollouts as one without."""
  def run(with_reflection):
    rollouts = []
    for step in range(4):
      rollouts.append(np.asarray(jax.random.categorical(rng.stream(0, step, "rollout"),
                                                        np.zeros((3, 50)))))
      if with_reflection:
        jax.random.normal(rng.stream(0, step, "reflect"), (2,))
    return np.stack(rollouts)
  assert np.array_equal(run(True), run(False))


def test_rejects_an_empty_purpose():
  with pytest.raises(ValueError, match="purpose"):
    rng.stream(0, 0, "")
