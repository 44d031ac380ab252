"""One process of test_two_processes.py, started through launch/multi_gpu.sh.

Joins the group from the AMRSD_* environment, builds the project's mesh over the
devices of both processes, feeds it this process's rows of one global batch and
prints one JSON line with sums that need data from both processes, and what the
multi-process helpers of amrsd.sharding and amrsd.distributed return.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from amrsd import distributed, sharding

ROWS, COLS = 16, 3


def main():
  group = distributed.initialize()
  again = distributed.initialize()  # must be a no-op, not a second jax.distributed.initialize
  mesh = sharding.make_mesh((2, -1, 1))
  rows = sharding.batch_sharding(mesh, 2)
  global_batch = np.arange(ROWS * COLS, dtype=np.float32).reshape(ROWS, COLS)
  mine = global_batch[_local_rows(rows)]
  batch = sharding.put_batch(mesh, {"x": mine})["x"]
  try:
    sharding.row_block(sharding.make_mesh((1, 1, -1)))  # rows on every device of both
    replicated_rows_error = ""
  except ValueError as e:
    replicated_rows_error = str(e)
  replicated = jax.sharding.NamedSharding(mesh, P())
  sum_of_squares = jax.jit(lambda x: jnp.sum(x * x), out_shardings=replicated)(batch)
  column_sums = jax.shard_map(lambda x: jax.lax.psum(jnp.sum(x, axis=0), ("data", "fsdp")),
                              mesh=mesh, in_specs=P(("data", "fsdp")), out_specs=P())(batch)
  print(json.dumps({
      "group": [group.coordinator, group.num_processes, group.process_id],
      "same_group_again": again == group,
      "process_index": jax.process_index(),
      "process_count": jax.process_count(),
      "device_count": jax.device_count(),
      "local_device_count": jax.local_device_count(),
      "is_primary": distributed.is_primary(),
      "sum_of_squares": float(sum_of_squares.addressable_data(0)),
      "column_sums": np.asarray(column_sums.addressable_data(0)).tolist(),
      "row_block": list(sharding.row_block(mesh)),
      "local_rows_round_trip": bool(np.array_equal(sharding.local_rows(batch), mine)),
      "gathered": distributed.gather([jax.process_index(), 10]).tolist(),
      "replicated_rows_error": replicated_rows_error,
  }), flush=True)


def _local_rows(rows_sharding):
  """The contiguous block of global rows whose shards live on this process's devices."""
  index = rows_sharding.addressable_devices_indices_map((ROWS, COLS)).values()
  starts = [i[0].start for i in index]
  stops = [i[0].stop for i in index]
  return slice(min(starts), max(stops))


if __name__ == "__main__":
  main()
