"""amrsd.bench.multiturn on the tiny random model: both sides' token counts agree."""

import pytest

from amrsd import envs, rewards
from amrsd.bench import multiturn
from amrsd.data.bfcl import BfclSource
from amrsd.sampling import Sampler
from tests.envs.conftest import word_chat_tokenizer

EPISODES = ["multi_turn_base_10", "multi_turn_base_29"]


@pytest.fixture(scope="module")
def chat_tokenizer():
  return word_chat_tokenizer()


@pytest.fixture(scope="module")
def records():
  by_id = {r["id"]: r for r in BfclSource(["base"], multi_turn=True, split="all").records}
  return [by_id[i] for i in EPISODES]


@pytest.mark.parametrize("force_length", [True, False])
def test_both_sides_cover_the_same_positions(tiny_model, chat_tokenizer, records,
                                             force_length):
  sampler = Sampler(tiny_model, chat_tokenizer, prompt_buckets=(256, 512))
  with rewards.VerifierPool(1) as real_pool:
    pool = multiturn.TimedPool(real_pool)
    new = lambda: [envs.make("bfcl_multi_turn", r, max_turns=3, pool=pool) for r in records]
    report = multiturn.measure(sampler, new, max_tokens_per_turn=8, max_tokens=64, seed=0,
                               force_length=force_length, pool=pool, log=lambda _: None)
  t = report.rollout.trajectories
  m, s = report.multi, report.single
  assert report.rows == 2 and m.tokens == int(t.completion_mask.sum())
  assert m.policy_tokens == int(t.policy_mask.sum()) and m.observation_tokens > 0
  assert m.policy_tokens + m.observation_tokens == m.tokens
  # N spans every row's episode; single-turn asked for N new tokens per row.
  assert report.positions >= t.completion_mask.sum(axis=1).max()
  assert report.single_result.completion_ids.shape == (2, report.positions)
  assert s.tokens == int(report.single_result.completion_mask.sum())
  if force_length:  # EOS off: every row decodes exactly N tokens
    assert s.tokens == 2 * report.positions
    assert report.single_stop_reasons == {"length": 2}
  else:
    assert 0 < s.tokens <= 2 * report.positions
  # Warm-ups compiled everything; the phases add up to the timed call.
  assert m.compile_seconds < 0.5 and s.compile_seconds < 0.5
  assert report.phases["env_steps"] > 0 and report.phases["append"] > 0
  assert report.phases["turns"] > 0 and report.phases["open"] > 0
  assert m.rate > 0 and s.rate > 0
  text = multiturn.format_report(report)
  assert "multi-turn" in text and "ratio multi / single tokens/s" in text


def test_session_open_is_timed_both_ways(tiny_model, chat_tokenizer):
  sampler = Sampler(tiny_model, chat_tokenizer, prompt_buckets=(16, 32))
  seconds = multiturn.measure_open(sampler, [[5, 6, 7], [9, 10]], group=3, max_tokens=16)
  assert set(seconds) == {True, False} and min(seconds.values()) > 0
