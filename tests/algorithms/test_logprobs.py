"""Token log-probs: alignment, chunking, padding invariance, top-k, on the tiny model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from amrsd.algorithms import logprobs
from tests.algorithms.conftest import make_batch


def _naive(model, ids, mask, start):
  """Log-softmax of the full logits; response token t read at position start + t - 1."""
  logits = np.asarray(model(jnp.asarray(ids), jnp.asarray(mask)), np.float64)
  logp_all = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
      - logits.max(-1, keepdims=True)
  T = ids.shape[1]
  pos = np.arange(start - 1, T - 1)
  lp = np.take_along_axis(logp_all[:, pos], ids[:, start:, None], -1)[..., 0]
  ent = -(np.exp(logp_all[:, pos]) * logp_all[:, pos]).sum(-1)
  return lp, ent, logp_all[:, pos]


@pytest.mark.parametrize("chunk", [1, 5, 4096])
def test_matches_full_logits_at_the_shifted_position(split_tiny, chunk):
  graphdef, state = split_tiny
  b = make_batch()
  start = b["student_ids"].shape[1] - b["response_mask"].shape[1]
  lp, ent = logprobs.token_logprobs((graphdef, state), b["student_ids"], b["student_mask"],
                                    start, chunk_size=chunk)
  expect_lp, expect_ent, _ = _naive(nnx.merge(graphdef, state), b["student_ids"],
                                    b["student_mask"], start)
  np.testing.assert_allclose(lp, expect_lp, atol=2e-5)
  np.testing.assert_allclose(ent, expect_ent, atol=2e-5)


def test_padding_amount_does_not_change_logprobs(split_tiny):
  graphdef, state = split_tiny
  model = nnx.merge(graphdef, state)
  out = []
  for extra in (0, 9):
    b = make_batch(extra_pad=extra)
    start = b["student_ids"].shape[1] - b["response_mask"].shape[1]
    out.append(np.asarray(logprobs.token_logprobs(model, b["student_ids"], b["student_mask"],
                                                  start, chunk_size=7)[0]))
  mask = make_batch()["response_mask"] > 0
  np.testing.assert_allclose(out[0][mask], out[1][mask], atol=1e-5)


def test_jitted_entry_point_matches(split_tiny):
  graphdef, state = split_tiny
  b = make_batch()
  eager = logprobs.token_logprobs((graphdef, state), b["student_ids"], b["student_mask"], 5)
  jitted = logprobs.jitted_token_logprobs(graphdef, state, b["student_ids"], b["student_mask"],
                                          start=5)
  np.testing.assert_allclose(eager[0], jitted[0], atol=1e-6)


def test_chunked_gradient_matches_full_logits_gradient(split_tiny):
  graphdef, state = split_tiny
  b = make_batch()
  ids, mask, start = jnp.asarray(b["student_ids"]), jnp.asarray(b["student_mask"]), 5
  weights = jnp.asarray(b["response_mask"])

  def chunked(state):
    return jnp.sum(logprobs.token_logprobs((graphdef, state), ids, mask, start,
                                           chunk_size=4)[0] * weights)

  def full(state):
    logits = nnx.merge(graphdef, state)(ids, mask)[:, start - 1:-1]
    lp = jnp.take_along_axis(jax.nn.log_softmax(logits), ids[:, start:, None], -1)[..., 0]
    return jnp.sum(lp * weights)

  g1, g2 = jax.grad(chunked)(state), jax.grad(full)(state)
  for a, b_ in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
    np.testing.assert_allclose(a, b_, atol=1e-5)


def test_topk_gathers_the_teacher_at_the_students_ids(split_tiny):
  graphdef, state = split_tiny
  model = nnx.merge(graphdef, state)
  b = make_batch()
  r = b["response_mask"].shape[1]
  s_start, t_start = b["student_ids"].shape[1] - r, b["teacher_ids"].shape[1] - r
  hs = logprobs.response_hidden(model, b["student_ids"], b["student_mask"], s_start)
  ht = logprobs.response_hidden(model, b["teacher_ids"], b["teacher_mask"], t_start)
  lp, ent, s_top, t_top = logprobs.topk_logprobs(model.unembed, model.unembed, hs, ht,
                                                 b["student_ids"][:, s_start:], 6, chunk_size=5)
  expect_lp, expect_ent, s_all = _naive(model, b["student_ids"], b["student_mask"], s_start)
  _, _, t_all = _naive(model, b["teacher_ids"], b["teacher_mask"], t_start)
  ids = np.argsort(-s_all, axis=-1)[..., :6]
  np.testing.assert_allclose(s_top, np.take_along_axis(s_all, ids, -1), atol=2e-5)
  np.testing.assert_allclose(t_top, np.take_along_axis(t_all, ids, -1), atol=2e-5)
  np.testing.assert_allclose(lp, expect_lp, atol=2e-5)
  np.testing.assert_allclose(ent, expect_ent, atol=2e-5)


def test_rejects_a_start_outside_the_row(tiny_model):
  ids = jnp.ones((1, 4), jnp.int32)
  with pytest.raises(ValueError, match="response start"):
    logprobs.token_logprobs(tiny_model, ids, ids, 4)
