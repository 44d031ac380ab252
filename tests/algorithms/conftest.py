"""Batches for the step tests: a tiny model, N = 2 prompts x G = 4 rollouts."""

import numpy as np
import pytest
from flax import nnx

from amrsd import models
from tests.conftest import tiny_config


def make_batch(seed=0, *, n=8, prompt_len=5, teacher_len=7, response_len=6, vocab=128,
               extra_pad=0):
  """A batch in the step's layout with random tokens, ragged prompts and responses.

  extra_pad adds that many padding columns on the left of student and teacher rows.
  """
  rng = np.random.default_rng(seed)
  def rows(context_len):
    ids = np.zeros((n, extra_pad + context_len + response_len), np.int32)
    mask = np.zeros_like(ids)
    for i in range(n):
      real = rng.integers(1, context_len + 1)
      ids[i, -(response_len + real):-response_len] = rng.integers(2, vocab, real)
      mask[i, -(response_len + real):-response_len] = 1
    return ids, mask
  s_ids, s_mask = rows(prompt_len)
  t_ids, t_mask = rows(teacher_len)
  response = rng.integers(2, vocab, (n, response_len)).astype(np.int32)
  lengths = rng.integers(1, response_len + 1, n)
  response_mask = (np.arange(response_len)[None] < lengths[:, None]).astype(np.float32)
  for ids, mask in ((s_ids, s_mask), (t_ids, t_mask)):
    ids[:, -response_len:] = response * response_mask
    mask[:, -response_len:] = response_mask
  return {
      "student_ids": s_ids, "student_mask": s_mask,
      "teacher_ids": t_ids, "teacher_mask": t_mask,
      "response_mask": response_mask,
      "logp_old": (-rng.uniform(0.5, 6.0, (n, response_len))).astype(np.float32),
      "rewards": np.array([1, 0, 0, 1, 0, 0, 0, 0], np.float32)[:n],
      "has_hint": np.array([1, 1, 0, 1, 1, 1, 1, 0], np.float32)[:n],
  }


@pytest.fixture(scope="module")
def split_tiny():
  """(graphdef, state) of a tiny random llama."""
  return nnx.split(models.Decoder(tiny_config(), rngs=nnx.Rngs(0)))
