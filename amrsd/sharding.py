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


def row_block(mesh) -> tuple[int, int]:
  """(index, count) of this process's block of batch rows: with several processes, every
  process feeds and reads one contiguous block of each batch, in block-index order.

  (0, 1) without a mesh or with one process. Raises ValueError when the mesh does not
  give every process its own block of rows.
  """
  processes = jax.process_count()
  if mesh is None or processes == 1:
    return 0, 1
  shards = mesh.shape["data"] * mesh.shape["fsdp"]
  rows = batch_sharding(mesh, 1).addressable_devices_indices_map((shards,)).values()
  starts = sorted({i[0].start or 0 for i in rows})
  per_process = shards // processes
  if (shards % processes or len(starts) != per_process or starts[-1] - starts[0] + 1 != per_process
      or starts[0] % per_process):
    raise ValueError(f"mesh {dict(mesh.shape)} over {processes} processes: each process must hold "
                     f"its own block of batch rows, so data x fsdp (= {shards}) must be a multiple "
                     f"of {processes} with every process's devices along those axes; e.g. "
                     f"mesh.shape=({processes}, -1, 1)")
  return starts[0] // per_process, processes


def put_batch(mesh, batch: dict) -> dict:
  """Places a dict of host arrays, this process's rows of a global batch, on the mesh with
  rows sharded. With several processes the global batch is their blocks in block order
  (see row_block). Rows must divide evenly over the data x fsdp shards."""
  if mesh is None:
    return {k: jax.numpy.asarray(v) for k, v in batch.items()}
  _, blocks = row_block(mesh)
  shards = mesh.shape["data"] * mesh.shape["fsdp"]
  out = {}
  for key, value in batch.items():
    value = np.asarray(value)
    rows = value.shape[0] * blocks
    if rows % shards:
      raise ValueError(f"batch[{key!r}] has {rows} rows, not divisible by the "
                       f"{shards} data x fsdp shards; change rollout.prompts_per_step or "
                       "rollout.group_size")
    out[key] = jax.make_array_from_process_local_data(
        batch_sharding(mesh, value.ndim), value, (rows,) + value.shape[1:])
  return out


def local_rows(array: jax.Array) -> np.ndarray:
  """This process's rows of a row-sharded global array, as a new numpy array (all of it
  with one process): the inverse of put_batch."""
  if array.is_fully_addressable:
    return np.array(array)  # a writable copy, like the multi-process path
  shards = array.addressable_shards
  spans = [shard.index[0].indices(array.shape[0])[:2] for shard in shards]
  first, last = min(a for a, _ in spans), max(b for _, b in spans)
  out = np.empty((last - first,) + array.shape[1:], array.dtype)
  filled = np.zeros(out.shape, bool)
  for shard, (start, stop) in zip(shards, spans):
    where = (slice(start - first, stop - first),) + tuple(shard.index[1:])
    out[where] = np.asarray(shard.data)
    filled[where] = True
  if not filled.all():
    raise ValueError(f"local_rows: this process holds only part of rows {first}..{last} of an "
                     f"array sharded as {array.sharding}")
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
