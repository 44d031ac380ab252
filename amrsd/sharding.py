"""The device mesh over axes ("data", "fsdp", "tensor")."""

import math

import jax
import numpy as np

AXES = ("data", "fsdp", "tensor")


def make_mesh(shape) -> jax.sharding.Mesh:
  """Mesh of `shape` (data, fsdp, tensor) over all devices; one -1 means "the rest".

  Axes are Auto (the compiler propagates shardings from the annotated parameters and
  batches); Explicit axes would reject the embedding gather.
  """
  shape = [int(s) for s in shape]
  devices = jax.device_count()
  if len(shape) != 3 or shape.count(-1) > 1 or any(s == 0 or s < -1 for s in shape):
    raise ValueError(f"mesh.shape={tuple(shape)} must be 3 positive sizes (data, fsdp, "
                     "tensor), at most one of them -1")
  if -1 in shape:
    known = math.prod(s for s in shape if s != -1)
    if devices % known:
      raise ValueError(f"mesh.shape={tuple(shape)}: {devices} devices are not divisible by {known}")
    shape[shape.index(-1)] = devices // known
  if math.prod(shape) > devices:
    raise ValueError(f"mesh.shape={tuple(shape)} needs {math.prod(shape)} devices, but "
                     f"{devices} are visible ({jax.devices()[0].platform})")
  # A mesh smaller than the machine uses the first devices (e.g. (1, 1, 1) on a host
  # with several); -1 takes them all.
  return jax.make_mesh(tuple(shape), AXES, devices=jax.devices()[:math.prod(shape)],
                       axis_types=(jax.sharding.AxisType.Auto,) * len(AXES))


def batch_sharding(mesh, ndim: int) -> jax.sharding.NamedSharding:
  """Rows over ("data", "fsdp"), everything else replicated."""
  return jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec(("data", "fsdp"), *([None] * (ndim - 1))))


def put_batch(mesh, batch: dict) -> dict:
  """Places a dict of host arrays on the mesh, rows sharded; rows must divide evenly."""
  if mesh is None:
    return {k: jax.numpy.asarray(v) for k, v in batch.items()}
  shards = mesh.shape["data"] * mesh.shape["fsdp"]
  out = {}
  for key, value in batch.items():
    value = np.asarray(value)
    if value.shape[0] % shards:
      raise ValueError(f"batch[{key!r}] has {value.shape[0]} rows, not divisible by the "
                       f"{shards} data x fsdp shards; change rollout.prompts_per_step or "
                       "rollout.group_size")
    out[key] = jax.device_put(value, batch_sharding(mesh, value.ndim))
  return out


def param_sharding(variable, mesh) -> jax.sharding.NamedSharding:
  """Where a parameter lives: its `out_sharding` annotation on this mesh."""
  spec = variable.get_metadata().get("out_sharding") or ()
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(*spec))


def place_state(state, mesh):
  """An nnx.State with every annotated variable placed by param_sharding (others
  replicated). Used for loaded models and for LoRA adapters added after loading."""
  from flax import nnx

  def place(variable):
    if not isinstance(variable, nnx.Variable):
      return variable
    return variable.replace(jax.device_put(variable[...], param_sharding(variable, mesh)))

  return jax.tree.map(place, state, is_leaf=lambda x: isinstance(x, nnx.Variable))
