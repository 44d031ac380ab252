"""Sampler.generate: agreement with the full forward, shapes, seeds, n, stops, meshes, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from amrsd import models
from amrsd.sampling import Sampler
from amrsd.sampling import decode as decode_lib
from tests.conftest import tiny_config

BUCKETS = (8, 16, 32)
PROMPTS = [[5, 6, 7], [9, 10, 11, 12, 13, 14, 15, 16, 17, 18], [40]]


def full_forward(model, result):
  """(argmax tokens, log-probs of the completion tokens) [rows, N] from one plain forward."""
  ids = np.concatenate([result.prompt_ids, result.completion_ids], axis=1)
  mask = np.concatenate([result.prompt_mask, result.completion_mask], axis=1)
  logits = model(jnp.asarray(ids), jnp.asarray(mask))
  width, new = result.prompt_ids.shape[1], result.completion_ids.shape[1]
  predicted = jax.nn.log_softmax(logits[:, width - 1:width + new - 1], axis=-1)
  logp = jnp.take_along_axis(predicted, jnp.asarray(result.completion_ids)[..., None], -1)[..., 0]
  return np.asarray(jnp.argmax(predicted, axis=-1)), np.asarray(logp)


def assert_matches_full_forward(model, result, *, greedy):
  argmax, logp = full_forward(model, result)
  valid = result.completion_mask.astype(bool)
  assert valid[:, 0].all()
  if greedy:
    np.testing.assert_array_equal(result.completion_ids[valid], argmax[valid])
  np.testing.assert_allclose(result.completion_logprobs[valid], logp[valid], atol=1e-4, rtol=0)
  assert (result.completion_logprobs[~valid] == 0).all()


@pytest.fixture
def sampler(tiny_model, tiny_tokenizer):
  return Sampler(tiny_model, tiny_tokenizer, prompt_buckets=BUCKETS)


def test_greedy_is_full_forward_argmax_with_its_logprobs(sampler, tiny_model):
  result = sampler.generate(PROMPTS, max_new_tokens=12, temperature=0)
  assert result.completion_ids.shape == (3, 12) and result.completion_ids.dtype == np.int32
  assert result.prompt_ids.shape == (3, 16) and result.prompt_mask.sum(1).tolist() == [3, 10, 1]
  assert_matches_full_forward(tiny_model, result, greedy=True)


def test_sampled_logprobs_match_full_forward(sampler, tiny_model):
  result = sampler.generate(PROMPTS, max_new_tokens=12, temperature=1.0, n=2, seed=3)
  assert result.completion_logprobs.dtype == np.float32
  assert_matches_full_forward(tiny_model, result, greedy=False)


def test_mask_ends_at_eos_and_pads_after(tiny_tokenizer):
  # A model biased towards EOS (id 1) so that rows end early.
  model = models.Decoder(tiny_config(), rngs=nnx.Rngs(1))
  model.embed[...] = model.embed[...].at[1].multiply(8.0)
  result = Sampler(model, tiny_tokenizer, prompt_buckets=BUCKETS).generate(
      PROMPTS, max_new_tokens=20, temperature=1.0, n=4, seed=0)
  ended = [r for r, reason in enumerate(result.stop_reasons) if reason == "eos"]
  assert ended, "the EOS-biased model should end some rows"
  for r in ended:
    length = int(result.completion_mask[r].sum())
    assert result.completion_mask[r, :length].all()
    assert result.completion_ids[r, length - 1] == 1
    assert (result.completion_ids[r, length:] == 0).all()
    assert 1 not in result.completion_ids[r, :length - 1]
  for r, reason in enumerate(result.stop_reasons):
    if reason == "length":
      assert result.completion_mask[r].all()
  assert_matches_full_forward(model, result, greedy=False)


def test_rows_are_prompt_major_and_n_reuses_the_prompt(sampler):
  single = sampler.generate(PROMPTS, max_new_tokens=6, temperature=0)
  repeated = sampler.generate(PROMPTS, max_new_tokens=6, temperature=0, n=3)
  np.testing.assert_array_equal(repeated.completion_ids, np.repeat(single.completion_ids, 3, 0))
  np.testing.assert_array_equal(repeated.prompt_ids, np.repeat(single.prompt_ids, 3, 0))
  assert repeated.texts == [t for t in single.texts for _ in range(3)]


def test_seed_reproducible_and_keys_accepted(sampler):
  run = lambda seed: sampler.generate(PROMPTS, max_new_tokens=10, n=2, seed=seed).completion_ids
  np.testing.assert_array_equal(run(7), run(7))
  assert not np.array_equal(run(7), run(8))
  np.testing.assert_array_equal(run(jax.random.key(7)), run(jax.random.key(7)))
  np.testing.assert_array_equal(run(jax.random.PRNGKey(7)), run(jax.random.key(7)))
  # n samples of one prompt differ from each other.
  rows = run(7)
  assert not np.array_equal(rows[0], rows[1])


def test_samples_do_not_depend_on_batch_padding(sampler):
  alone = sampler.generate(PROMPTS[:1], max_new_tokens=8, seed=5, n=2).completion_ids
  together = sampler.generate(PROMPTS, max_new_tokens=8, seed=5, n=2).completion_ids
  np.testing.assert_array_equal(alone, together[:2])


def test_tiny_top_p_and_top_k_1_are_greedy(sampler):
  greedy = sampler.generate(PROMPTS, max_new_tokens=8, temperature=0).completion_ids
  for options in (dict(top_k=1), dict(top_p=1e-6), dict(top_k=3, top_p=1e-6)):
    sampled = sampler.generate(PROMPTS, max_new_tokens=8, temperature=1.5, seed=2, **options)
    np.testing.assert_array_equal(sampled.completion_ids, greedy, err_msg=str(options))


def test_compile_count_flat_across_new_prompts(sampler):
  sampler.generate(PROMPTS, max_new_tokens=10, temperature=0)
  compiled = sampler.compile_count
  assert compiled == 2  # one prefill, one decode loop
  # Same buckets (prompt width 16, 3 rows, decode budget 16), new prompts and lengths.
  sampler.generate([[3] * 9, [20, 21], [7] * 16], max_new_tokens=12, temperature=0)
  sampler.generate([list(range(30, 42)), [9], [8, 8]], max_new_tokens=16, temperature=0)
  assert sampler.compile_count == compiled
  sampler.generate([[9], [8, 8], [4], [5]], max_new_tokens=10, temperature=0)  # row bucket 4
  assert sampler.compile_count == compiled + 2
  compiled = sampler.compile_count
  sampler.generate([[3] * 20], max_new_tokens=10, temperature=0)  # next prompt bucket
  assert sampler.compile_count == compiled + 2


def test_new_weights_are_used_without_recompiling(sampler, tiny_model):
  before = sampler.generate(PROMPTS, max_new_tokens=8, temperature=0)
  compiled = sampler.compile_count
  tiny_model.w_down[...] = tiny_model.w_down[...] * 3.0 + 0.05
  after = sampler.generate(PROMPTS, max_new_tokens=8, temperature=0)
  assert sampler.compile_count == compiled
  assert not np.allclose(before.completion_logprobs, after.completion_logprobs)
  assert_matches_full_forward(tiny_model, after, greedy=True)


def test_mesh_gives_the_same_greedy_tokens(tiny_model, tiny_tokenizer):
  assert jax.device_count() == 8
  mesh = jax.make_mesh((2, 2, 2), ("data", "fsdp", "tensor"),
                       axis_types=(jax.sharding.AxisType.Auto,) * 3)
  plain = Sampler(tiny_model, tiny_tokenizer, prompt_buckets=BUCKETS)
  sharded = Sampler(tiny_model, tiny_tokenizer, prompt_buckets=BUCKETS, mesh=mesh)
  expected = plain.generate(PROMPTS, max_new_tokens=10, temperature=0, n=2)
  got = sharded.generate(PROMPTS, max_new_tokens=10, temperature=0, n=2)
  np.testing.assert_array_equal(got.completion_ids, expected.completion_ids)
  np.testing.assert_allclose(got.completion_logprobs, expected.completion_logprobs, atol=1e-5)


def test_chat_string_and_id_prompts_agree(sampler, tiny_tokenizer):
  chat = [{"role": "user", "content": "t9 t10"}]
  results = [sampler.generate([p], max_new_tokens=5, temperature=0)
             for p in (chat, "t9 t10 t4", [9, 10, 4])]
  for result in results:
    assert result.prompt_ids[0, -3:].tolist() == [9, 10, 4]
    np.testing.assert_array_equal(result.completion_ids, results[0].completion_ids)
  assert results[0].texts[0] == tiny_tokenizer.decode(results[0].completion_ids[0])


def test_stop_string_cuts_text_and_masks_later_tokens(sampler):
  free = sampler.generate(PROMPTS, max_new_tokens=10, temperature=1.0, seed=4)
  words = free.texts[0].split()
  stop = words[3]
  first = words.index(stop)  # the stop may also occur earlier than index 3
  stopped = sampler.generate(PROMPTS, max_new_tokens=10, temperature=1.0, seed=4, stop=[stop])
  assert stopped.stop_reasons[0] == "stop"
  assert stopped.texts[0] == " ".join(words[:first]) + (" " if first else "")
  # Token `first` completes the stop match: it stays in the mask, later ones do not.
  assert stopped.completion_mask[0].tolist() == [1] * (first + 1) + [0] * (9 - first)
  assert (stopped.completion_ids[0, first + 1:] == 0).all()
  assert (stopped.completion_logprobs[0, first + 1:] == 0).all()
  np.testing.assert_array_equal(stopped.completion_ids[0, :first + 1],
                                free.completion_ids[0, :first + 1])


def test_truncate_left_keeps_the_last_tokens(sampler):
  long_prompt = list(range(5, 45))  # 40 tokens > largest bucket 32
  result = sampler.generate([long_prompt], max_new_tokens=4, temperature=0, truncate="left")
  assert result.prompt_ids[0].tolist() == long_prompt[-32:]


@pytest.mark.parametrize("prompts, options, message", [
    ([], {}, "prompts is empty"),
    ("t5 t6", {}, "must be a list of prompts"),
    ([[5], []], {}, r"prompts\[1\] is empty"),
    ([[5], [1.5]], {}, r"prompts\[1\] is neither"),
    ([[5, 999]], {}, "outside"),
    ([list(range(2, 42))], {}, r"prompts\[0\] has 40 tokens.*truncate='left'"),
    ([[5]], dict(max_new_tokens=0), "max_new_tokens must be a positive int"),
    ([[5]], dict(temperature=-0.1), "temperature must be >= 0"),
    ([[5]], dict(top_p=0.0), r"top_p must be in \(0, 1\]"),
    ([[5]], dict(top_p=1.2), r"top_p must be in \(0, 1\]"),
    ([[5]], dict(top_k=-1), "top_k must be an int >= 0"),
    ([[5]], dict(n=0), "n \\(samples per prompt\\)"),
    ([[5]], dict(truncate="right"), "truncate must be None or 'left'"),
    ([[5]], dict(stop=[""]), "stop must be"),
    ([[5]], dict(seed="x"), "seed must be an int or a JAX PRNG key"),
])
def test_bad_input_is_rejected_clearly(sampler, prompts, options, message):
  options = {"max_new_tokens": 4, **options}
  with pytest.raises(ValueError, match=message):
    sampler.generate(prompts, **options)
  assert sampler.compile_count == 0


@pytest.mark.slow
def test_real_model_greedy_matches_full_forward(smollm):
  model, tokenizer = smollm
  sampler = Sampler(model, tokenizer)
  prompts = [[{"role": "user", "content": "What is 7 + 5? Answer with the number only."}],
             [{"role": "user", "content": "Name three colours."}]]
  result = sampler.generate(prompts, max_new_tokens=24, temperature=0)
  assert_matches_full_forward(model, result, greedy=True)
  assert "12" in result.texts[0]
  assert set(result.stop_reasons) <= {"eos", "length"}


@pytest.mark.parametrize("decode_weights", ["split", "stacked"])
def test_windowed_decode_matches_full_forward(decode_weights, tiny_model, tiny_tokenizer):
  # Prompt bucket 16 and a 64-slot budget: decode runs in windows of 32, 64 and 80 slots.
  sampler = Sampler(tiny_model, tiny_tokenizer, prompt_buckets=BUCKETS,
                    decode_weights=decode_weights)
  assert decode_lib.windows(16 + 64, 64) == [32, 64, 80]
  result = sampler.generate(PROMPTS, max_new_tokens=40, temperature=0)
  assert result.completion_mask[:, -1].any()  # some row reaches the last window
  assert_matches_full_forward(tiny_model, result, greedy=True)


def test_unknown_decode_weights_names_the_choices(tiny_model, tiny_tokenizer):
  with pytest.raises(ValueError, match="choose one of auto, split, stacked"):
    Sampler(tiny_model, tiny_tokenizer, decode_weights="copied")


@pytest.mark.slow
def test_real_model_split_and_stacked_decode_give_the_same_greedy_tokens(smollm):
  model, tokenizer = smollm
  prompts = ["The capital of France is", "Once upon a time, in a small village,"]
  results = [Sampler(model, tokenizer, prompt_buckets=(32, 64), decode_weights=weights)
             .generate(prompts, max_new_tokens=40, temperature=0)
             for weights in ("split", "stacked")]
  assert decode_lib.windows(32 + 64, 64) == [64, 96]  # two windows
  np.testing.assert_array_equal(results[0].completion_ids, results[1].completion_ids)
  assert results[0].completion_mask.sum() > 2 * 33  # decoding went past the first window
  assert_matches_full_forward(model, results[1], greedy=True)
