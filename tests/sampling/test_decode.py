"""Token selection on the device: the sampled distribution and its filters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amrsd.sampling.decode import DecodeMode, select_tokens

LOGITS = jnp.log(jnp.array([0.4, 0.3, 0.15, 0.1, 0.05]))
DRAWS = 20000


def frequencies(temperature=1.0, top_p=1.0, top_k=0, filtered=False):
  keys = jax.random.split(jax.random.key(0), DRAWS)
  logits = jnp.broadcast_to(LOGITS, (DRAWS, LOGITS.shape[0]))
  tokens = select_tokens(logits, keys, jnp.float32(temperature), jnp.float32(top_p),
                         jnp.int32(top_k), DecodeMode(greedy=False, filtered=filtered))
  return np.bincount(np.asarray(tokens), minlength=LOGITS.shape[0]) / DRAWS


def normalized(p):
  p = np.asarray(p, np.float64)
  return p / p.sum()


@pytest.mark.parametrize("options, expected", [
    (dict(), [0.4, 0.3, 0.15, 0.1, 0.05]),
    (dict(temperature=0.5), normalized(np.array([0.4, 0.3, 0.15, 0.1, 0.05]) ** 2)),
    (dict(top_k=2, filtered=True), normalized([0.4, 0.3, 0, 0, 0])),
    # Nucleus: 0.4 + 0.3 < 0.8, so 0.15 joins; 0.1 does not.
    (dict(top_p=0.8, filtered=True), normalized([0.4, 0.3, 0.15, 0, 0])),
    (dict(top_p=0.8, top_k=2, filtered=True), normalized([0.4, 0.3, 0, 0, 0])),
])
def test_sampled_frequencies_follow_the_distribution(options, expected):
  np.testing.assert_allclose(frequencies(**options), expected, atol=0.015)


def test_greedy_is_argmax():
  logits = jax.random.normal(jax.random.key(1), (6, 50))
  keys = jax.random.split(jax.random.key(0), 6)
  tokens = select_tokens(logits, keys, jnp.float32(1), jnp.float32(1), jnp.int32(0),
                         DecodeMode(greedy=True, filtered=False))
  np.testing.assert_array_equal(tokens, np.argmax(logits, axis=-1))
