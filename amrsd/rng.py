"""Per-purpose random streams: one key per (seed, step, purpose name).

Every consumer of randomness (rollout sampling, hint sampling, data shuffling,
dropout) draws from its own stream, derived only from the run seed, the step and
its own name. Turning reflection on or off, or switching the algorithm, therefore
never changes which rollouts are sampled at a given step, and a resumed run draws
exactly the keys an uninterrupted one would.
"""

import zlib

import jax


def stream(seed: int, step, purpose: str) -> jax.Array:
  """A typed PRNG key for `purpose` at `step`.

  seed: the run's integer seed. step: int or int32 scalar array (traceable).
  purpose: a short name such as "rollout", "reflect", "shuffle". Names are hashed
  with CRC32, which is stable across processes and Python versions (unlike hash()).
  """
  if not isinstance(purpose, str) or not purpose:
    raise ValueError(f"rng.stream: purpose must be a non-empty string, got {purpose!r}")
  key = jax.random.fold_in(jax.random.key(seed), step)
  return jax.random.fold_in(key, purpose_id(purpose))


def purpose_id(purpose: str) -> int:
  """The 31-bit integer a purpose name folds into the key."""
  return zlib.crc32(purpose.encode("utf-8")) & 0x7FFFFFFF
