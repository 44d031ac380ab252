"""Sampler.session: multi-turn episodes on one KV cache against one plain forward."""

import numpy as np
import pytest
from flax import nnx

from amrsd import models
from amrsd.sampling import Sampler
from tests.conftest import tiny_config
from tests.sampling.test_sampler import BUCKETS, PROMPTS, full_forward


def play(sampler, observations, *, temperature, turns=3, tokens=6, seed=0):
  """Runs `turns` turns with observations[t][row] appended after turn t."""
  session = sampler.session(PROMPTS, max_tokens=128, seed=seed)
  for t in range(turns):
    session.generate(max_new_tokens=tokens, temperature=temperature)
    if t < turns - 1:
      session.extend(observations[t])
  return session


OBSERVATIONS = [[[70, 71], [72], [73, 74, 75, 76, 77]],
                [[80], [81, 82, 83], [84, 85]]]


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_policy_logprobs_equal_one_forward_over_the_episode(tiny_model, tiny_tokenizer,
                                                            temperature):
  sampler = Sampler(tiny_model, tiny_tokenizer, prompt_buckets=BUCKETS)
  out = play(sampler, OBSERVATIONS, temperature=temperature).trajectories()
  argmax, logp = full_forward(tiny_model, out)
  policy = out.policy_mask.astype(bool)
  assert policy.sum() == 3 * 3 * 6  # no EOS from this model: every turn runs to its limit
  np.testing.assert_allclose(out.completion_logprobs[policy], logp[policy], atol=1e-4)
  if temperature == 0:
    np.testing.assert_array_equal(out.completion_ids[policy], argmax[policy])
  # The observations sit between the turns, carry no policy flag and no log-prob.
  for row in range(3):
    tokens = out.completion_ids[row][out.completion_mask[row] > 0].tolist()
    assert tokens[6:6 + len(OBSERVATIONS[0][row])] == OBSERVATIONS[0][row]
  assert (out.completion_logprobs[~policy] == 0).all()


def test_rows_that_end_early_leave_no_gap(tiny_tokenizer):
  # EOS-biased: rows end at different steps; the cache must hold each row's real tokens only.
  model = models.Decoder(tiny_config(), rngs=nnx.Rngs(1))
  model.embed[...] = model.embed[...].at[1].multiply(8.0)
  sampler = Sampler(model, tiny_tokenizer, prompt_buckets=BUCKETS)
  session = sampler.session(PROMPTS, max_tokens=256, seed=0)
  reasons = []
  for t in range(4):
    turn = session.generate(max_new_tokens=12, temperature=1.0)
    reasons += turn.stop_reasons
    session.extend([[60 + t, 61], [62], "hello"])
  assert "eos" in reasons and "length" in reasons
  out = session.trajectories()
  _, logp = full_forward(model, out)
  policy = out.policy_mask.astype(bool)
  np.testing.assert_allclose(out.completion_logprobs[policy], logp[policy], atol=1e-4)


def test_an_ended_episode_samples_nothing_more(tiny_model, tiny_tokenizer):
  sampler = Sampler(tiny_model, tiny_tokenizer, prompt_buckets=BUCKETS)
  session = sampler.session(PROMPTS, max_tokens=64)
  session.generate(max_new_tokens=4, temperature=1.0)
  session.extend([[70], None, [71]])
  turn = session.generate(max_new_tokens=4, temperature=1.0)
  assert turn.stop_reasons[1] is None and turn.texts[1] == "" and turn.completion_mask[1].sum() == 0
  assert turn.completion_mask[0].sum() == 4
  out = session.trajectories()
  assert out.policy_mask[1].sum() == 4 and out.completion_mask[1].sum() == 4
  session.extend([None, None, None])
  assert session.done
  with pytest.raises(ValueError, match="every episode has ended"):
    session.generate(max_new_tokens=4)


def test_ended_episodes_free_their_rows_and_change_no_sample(tiny_model, tiny_tokenizer):
  """Three episodes take 3 rows; once two have ended, turns run on one row. Episode
  0 samples the same tokens as in a session where the others go on."""
  sampler = Sampler(tiny_model, tiny_tokenizer, prompt_buckets=BUCKETS)
  runs = []
  for ended in (True, False):
    session = sampler.session(PROMPTS, max_tokens=128, seed=5)
    rows = []
    for t in range(3):
      session.generate(max_new_tokens=6, temperature=1.0)
      rows.append(session.batch_rows)
      end = ended and t >= 1
      session.extend([[70 + t], None if end else [71], None if end else [72]])
    runs.append((session.trajectories(), rows))
  (freed, freed_rows), (kept, kept_rows) = runs
  assert freed_rows == [3, 3, 1] and kept_rows == [3, 3, 3]
  assert freed.policy_mask[1].sum() == freed.policy_mask[2].sum() == 12
  n = kept.completion_mask[0].sum()
  np.testing.assert_array_equal(freed.completion_ids[0, :n], kept.completion_ids[0, :n])
  np.testing.assert_allclose(freed.completion_logprobs[0, :n], kept.completion_logprobs[0, :n],
                             atol=1e-5)
  _, logp = full_forward(tiny_model, freed)
  policy = freed.policy_mask.astype(bool)
  np.testing.assert_allclose(freed.completion_logprobs[policy], logp[policy], atol=1e-4)


@pytest.mark.parametrize("mesh_shape", [None, (2, 2, 2)])
def test_episodes_with_one_opening_share_its_prefill_and_sample_the_same(
    tiny_model, tiny_tokenizer, mesh_shape):
  """Five episodes open with two distinct prompts: the prefill runs those two rows (the
  row bucket of 2), each episode gets a copy, and every turn samples what it samples
  when each episode is prefilled on its own row."""
  import jax
  mesh = mesh_shape and jax.make_mesh(mesh_shape, ("data", "fsdp", "tensor"),
                                      axis_types=(jax.sharding.AxisType.Auto,) * 3)
  sampler = Sampler(tiny_model, tiny_tokenizer, prompt_buckets=BUCKETS, mesh=mesh)
  prefill_rows = []
  real_prefill = sampler._prefill
  def counting_prefill(state, ids, mask, **kw):
    prefill_rows.append(ids.shape[0])
    return real_prefill(state, ids, mask, **kw)
  sampler._prefill = counting_prefill
  prompts = [PROMPTS[0], PROMPTS[1], PROMPTS[0], PROMPTS[0], PROMPTS[1]]
  runs = []
  for share in (True, False):
    session = sampler.session(prompts, max_tokens=64, seed=2, share_prefill=share)
    for t in range(2):
      session.generate(max_new_tokens=5, temperature=1.0)
      session.extend([[70 + t], [71], None if t else [72], [73, 74], [75]])
    runs.append(session.trajectories())
  assert prefill_rows == [sampler._row_bucket(2), sampler._row_bucket(5)]
  shared, own = runs
  np.testing.assert_array_equal(shared.prompt_ids, own.prompt_ids)
  np.testing.assert_array_equal(shared.completion_mask, own.completion_mask)
  np.testing.assert_array_equal(shared.completion_ids, own.completion_ids)
  np.testing.assert_allclose(shared.completion_logprobs, own.completion_logprobs, atol=1e-5)
  # Episodes 0, 2 and 3 open alike but draw from their own keys.
  assert not np.array_equal(shared.completion_ids[0], shared.completion_ids[3])
  _, logp = full_forward(tiny_model, shared)
  policy = shared.policy_mask.astype(bool)
  np.testing.assert_allclose(shared.completion_logprobs[policy], logp[policy], atol=1e-4)


def test_same_seed_same_episode_and_turns_differ(tiny_model, tiny_tokenizer):
  sampler = Sampler(tiny_model, tiny_tokenizer, prompt_buckets=BUCKETS)
  a = play(sampler, OBSERVATIONS, temperature=1.0, seed=3).trajectories()
  b = play(sampler, OBSERVATIONS, temperature=1.0, seed=3).trajectories()
  np.testing.assert_array_equal(a.completion_ids, b.completion_ids)
  c = play(sampler, OBSERVATIONS, temperature=1.0, seed=4).trajectories()
  assert not np.array_equal(a.completion_ids, c.completion_ids)


def test_misuse_is_refused_with_how_to_fix(tiny_model, tiny_tokenizer):
  sampler = Sampler(tiny_model, tiny_tokenizer, prompt_buckets=BUCKETS)
  session = sampler.session(PROMPTS, max_tokens=16)
  with pytest.raises(ValueError, match="needs 31"):
    session.generate(max_new_tokens=32)
  session.generate(max_new_tokens=8, temperature=0)
  with pytest.raises(ValueError, match="call extend"):
    session.generate(max_new_tokens=4)
  with pytest.raises(ValueError, match="3 rows"):
    session.extend([[1]])
  with pytest.raises(ValueError, match="message list"):
    session.extend([[{"role": "tool", "content": "x"}], [], []])
  with pytest.raises(ValueError, match="slots left"):
    session.extend([list(range(2, 30)), [], []])
  with pytest.raises(ValueError, match="max_tokens"):
    sampler.session(PROMPTS, max_tokens=0)


def test_a_mesh_plays_the_same_episodes(tiny_model, tiny_tokenizer):
  import jax
  mesh = jax.make_mesh((2, 2, 2), ("data", "fsdp", "tensor"),
                       axis_types=(jax.sharding.AxisType.Auto,) * 3)
  plain = Sampler(tiny_model, tiny_tokenizer, prompt_buckets=BUCKETS)
  sharded = Sampler(tiny_model, tiny_tokenizer, prompt_buckets=BUCKETS, mesh=mesh)
  expected = play(plain, OBSERVATIONS, temperature=0).trajectories()
  got = play(sharded, OBSERVATIONS, temperature=0).trajectories()
  np.testing.assert_array_equal(got.completion_ids, expected.completion_ids)
  np.testing.assert_allclose(got.completion_logprobs, expected.completion_logprobs, atol=1e-5)
