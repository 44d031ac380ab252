"""Meshes: the same AMR-SD steps give the same loss and parameters on every mesh shape."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from amrsd import models, sharding
from amrsd.algorithms.config import AlgorithmConfig
from amrsd.algorithms.step import init_opt_state, make_train_step
from tests.algorithms.conftest import make_batch
from tests.conftest import tiny_config

MESHES = [(1, 1, 1), (8, 1, 1), (2, 4, 1), (2, 2, 2), (1, 2, 4)]


def _two_amrsd_steps(mesh_shape):
  mesh = sharding.make_mesh(mesh_shape)
  model = models.Decoder(tiny_config(), rngs=nnx.Rngs(0))
  graphdef, state = nnx.split(model)
  state = sharding.place_state(state, mesh)
  # SGD: parameter changes are linear in the gradients, so they compare at float32
  # precision (Adam would turn reduction-order noise in near-zero gradients into
  # full-size steps of either sign).
  tx = optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.5))
  config = AlgorithmConfig(name="amrsd", group_size=4, tau_pos=0.0, tau_neg=0.0,
                           anneal_steps=10)
  step = make_train_step(graphdef, tx, config)
  opt_state = init_opt_state(tx, state)
  losses = []
  for k in range(2):
    batch = sharding.put_batch(mesh, make_batch(seed=k))
    state, opt_state, metrics = step(state, opt_state, batch, jnp.int32(k))
    losses.append(float(metrics["loss"]))
    assert float(metrics["gate_fraction"]) > 0  # the CIG path is exercised
  params = {"/".join(map(str, path)): np.asarray(v[...]) for path, v in state.flat_state()}
  return losses, params, state


@pytest.fixture(scope="module")
def unsharded():
  return _two_amrsd_steps((1, 1, 1))


@pytest.mark.parametrize("mesh_shape", MESHES[1:])
def test_two_amrsd_steps_match_across_meshes(mesh_shape, unsharded):
  losses, params, state = _two_amrsd_steps(mesh_shape)
  np.testing.assert_allclose(losses, unsharded[0], rtol=1e-5, atol=1e-6)
  for name, value in unsharded[1].items():
    np.testing.assert_allclose(params[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
  # Parameters stay split over the mesh as annotated: wq is (layers, fsdp, tensor).
  wq = state["wq"][...]
  L, d_in, d_out = wq.shape
  _, fsdp, tensor = mesh_shape
  assert wq.sharding.shard_shape(wq.shape) == (L, d_in // fsdp, d_out // tensor)


def test_mesh_shape_errors_name_the_problem():
  with pytest.raises(ValueError, match="needs 16 devices, but 8 are visible"):
    sharding.make_mesh((4, 4, 1))
  with pytest.raises(ValueError, match="at most one of them -1"):
    sharding.make_mesh((-1, -1, 1))
  assert sharding.make_mesh((2, -1, 1)).shape["fsdp"] == 4


def test_batch_rows_must_divide_the_data_shards():
  mesh = sharding.make_mesh((2, 2, 1))
  with pytest.raises(ValueError, match="not divisible by the 4 data x fsdp shards"):
    sharding.put_batch(mesh, {"rewards": np.zeros(6, np.float32)})
