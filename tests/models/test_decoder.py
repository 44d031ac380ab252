"""Behaviour of the Decoder itself: padding, the KV cache, dtypes, the head, annotations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from amrsd import models
from amrsd.models import params as params_lib
from tests.conftest import tiny_config
from tests.models.conftest import CHECKPOINTS, checkpoint_dir, forward, reference

MESH_AXES = ("data", "fsdp", "tensor", None)


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_left_padding_changes_no_logit(name, fixture_models):
  model, _ = fixture_models[name]
  tokens = reference(name)["input_ids"][0]  # the unpadded row, [T]
  alone = np.asarray(forward(model, tokens[None]))[0]
  rng = np.random.default_rng(0)
  for pad in (1, 5):
    # Pad slots hold random ids, not the pad id: nothing may read them.
    junk = rng.integers(0, model.config.vocab_size, pad)
    ids = np.concatenate([junk, tokens])[None].astype(np.int32)
    mask = np.concatenate([np.zeros(pad), np.ones(len(tokens))])[None].astype(np.int32)
    padded = np.asarray(forward(model, ids, mask))[0, pad:]
    np.testing.assert_allclose(padded, alone, atol=1e-5, rtol=0, err_msg=f"{pad} pads")


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_prefill_and_decode_through_cache_match_full_forward(name, fixture_models):
  model, _ = fixture_models[name]
  ref = reference(name)
  ids, mask = ref["input_ids"], ref["attention_mask"]  # left-padded [3, 12]
  full = np.asarray(forward(model, ids, mask))
  # Two prefill chunks (the second one written at slot 5, not 0), then one token at a time,
  # into a cache with spare slots; positions are left to their default.
  cache = models.init_cache(model.config, ids.shape[0], ids.shape[1] + 4)
  bounds = [0, 5, 8, 9, 10, 11, 12]
  for start, end in zip(bounds[:-1], bounds[1:]):
    logits, cache = forward(model, ids[:, start:end], mask[:, start:end], cache=cache)
    real = mask[:, start:end].astype(bool)
    diff = np.abs(np.asarray(logits) - full[:, start:end])[real].max()
    assert diff < 1e-4, f"tokens [{start}, {end}) differ by {diff}"
  assert int(cache.index) == ids.shape[1]
  np.testing.assert_array_equal(np.asarray(cache.mask[:, :ids.shape[1]]), mask.astype(bool))


def test_bfloat16_runs_and_stays_close_to_float32(fixture_models):
  name = "llama3_untied"  # logits of order 1 (the tied fixtures reach 50)
  ref = reference(name)
  model32, _ = fixture_models[name]
  model16, _ = models.load(checkpoint_dir(name), dtype=jnp.bfloat16)
  assert all(v.dtype == jnp.bfloat16 for v in jax_leaves(nnx.state(model16, nnx.Param)))
  logits16 = np.asarray(forward(model16, ref["input_ids"], ref["attention_mask"]))
  logits32 = np.asarray(forward(model32, ref["input_ids"], ref["attention_mask"]))
  assert logits16.dtype == np.float32
  real = ref["attention_mask"].astype(bool)
  error = np.abs(logits16 - logits32)[real]
  scale = np.abs(logits32[real]).mean()
  assert np.isfinite(logits16).all()
  assert error.mean() < 0.03 * scale and error.max() < 0.2 * scale, (error.mean(), scale)
  agree = (logits16.argmax(-1) == logits32.argmax(-1))[real].mean()
  assert agree >= 0.9, agree


def test_tied_head_is_the_embedding(fixture_models):
  model, _ = fixture_models["llama_tied"]
  assert "lm_head" not in nnx.state(model, nnx.Param)
  ids = reference("llama_tied")["input_ids"]
  hidden, _ = model.hidden_states(ids)
  expected = np.asarray(hidden) @ np.asarray(model.embed[...]).T
  np.testing.assert_allclose(np.asarray(forward(model, ids)), expected, atol=1e-4, rtol=1e-5)


def test_untied_head_is_its_own_matrix(fixture_models):
  model, _ = fixture_models["llama3_untied"]
  head, embed = np.asarray(model.lm_head[...]), np.asarray(model.embed[...])
  assert head.shape == embed.T.shape and not np.allclose(head, embed.T)
  ids = reference("llama3_untied")["input_ids"]
  hidden, _ = model.hidden_states(ids)
  np.testing.assert_allclose(np.asarray(forward(model, ids)), np.asarray(hidden) @ head,
                             atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("model_type", ["llama", "qwen2", "qwen3"])
@pytest.mark.parametrize("tied", [True, False])
def test_every_parameter_has_a_partition_annotation(model_type, tied):
  config = tiny_config(model_type, tie_word_embeddings=tied)
  model = nnx.eval_shape(lambda: models.Decoder(config, rngs=nnx.Rngs(0)))
  flat = dict(nnx.to_flat_state(nnx.state(model, nnx.Param)))
  assert {path[-1] for path in flat} == set(params_lib.param_names(config))
  for path, variable in flat.items():
    spec = variable.get_metadata().get("out_sharding")
    assert isinstance(spec, tuple), (path, spec)
    assert len(spec) == variable.ndim, (path, spec, variable.shape)
    assert all(axis in MESH_AXES for axis in spec), (path, spec)
    named = [axis for axis in spec if axis is not None]
    assert len(named) == len(set(named)), (path, spec)


def test_loaded_parameters_keep_their_annotations(fixture_models):
  for name, (model, _) in fixture_models.items():
    built = nnx.eval_shape(lambda: models.Decoder(model.config, rngs=nnx.Rngs(0)))
    want = {path: v.get_metadata()["out_sharding"]
            for path, v in nnx.to_flat_state(nnx.state(built, nnx.Param))}
    got = {path: v.get_metadata().get("out_sharding")
           for path, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}
    assert got == want, name


def jax_leaves(state):
  return [v[...] for _, v in nnx.to_flat_state(state)]


def train_signals(frozen, **options):
  """(logits, gradients, parameter state, gradient jaxpr) of a tiny Decoder built with options."""
  ids = np.random.default_rng(0).integers(0, 128, (2, 9)).astype(np.int32)
  model = models.Decoder(tiny_config(), rngs=nnx.Rngs(0), **options)
  model.frozen_layers = frozen
  graphdef, state = nnx.split(model)

  def loss(state):
    logits = nnx.merge(graphdef, state)(ids)
    return -jnp.mean(jax.nn.log_softmax(logits)[:, :-1].take(ids[0, 1:], axis=-1)), logits

  grad = jax.grad(loss, has_aux=True)
  grads, logits = grad(state)
  return logits, grads, state, str(jax.make_jaxpr(grad)(state))


@pytest.mark.parametrize("frozen", [0, 1])
@pytest.mark.parametrize("policy", ["full", "save_dots"])
def test_remat_policies_change_memory_not_gradients(policy, frozen):
  _, expected, _, plain = train_signals(frozen, remat="none")
  _, got, _, rematted = train_signals(frozen, remat=policy)
  assert "remat" in rematted and "remat" not in plain  # the policy is applied
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_unknown_remat_policy_names_the_choices():
  with pytest.raises(ValueError, match="choose one of none, full, save_dots"):
    models.Decoder(tiny_config(), remat="some", rngs=nnx.Rngs(0))


@pytest.mark.parametrize("frozen", [0, 1])
def test_unrolled_layers_give_the_scanned_logits_gradients_and_parameters(frozen):
  scanned, unrolled = train_signals(frozen), train_signals(frozen, scan_layers=False)
  assert "scan" in scanned[3] and "scan" not in unrolled[3]
  np.testing.assert_allclose(unrolled[0], scanned[0], rtol=1e-5, atol=1e-5)
  # The same parameter tree (names, shapes): a checkpoint does not depend on the option.
  shapes = lambda state: {path: v[...].shape for path, v in nnx.to_flat_state(state)}
  assert shapes(unrolled[2]) == shapes(scanned[2])
  for a, b in zip(jax.tree.leaves(unrolled[1]), jax.tree.leaves(scanned[1])):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
  frozen_grad = np.asarray(unrolled[1]["wq"][...][:frozen])
  assert not frozen_grad.any()  # frozen blocks get no gradient when unrolled either
