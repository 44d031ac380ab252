"""Peak memory of one compiled AMR-SD train step at 8B scale, without running it.

  python -m amrsd.bench.memory [--devices=32] [--mesh=1,32,1] [--rows=64] \
      [--attention=xla,chunked] [--runs=none:1,save_dots:1,full:1,full:8] ...

Builds a Qwen3-8B-shaped decoder abstractly (no weights are allocated), places it on a
simulated mesh of fake CPU devices (a v5p-64 slice has 32 chips, 95 GB of HBM each),
lowers and compiles the jitted train step for abstract inputs, and prints the compiled
program's per-device memory analysis for each rematerialization policy (model.remat), and
with gradient accumulation over micro-batches on top of full remat, for each attention
implementation (model.attention). --teacher_weights=ema|initial adds the teacher's own
weight copy (algorithm.teacher_weights, amrsd/teacher_weights.py) as a step argument and
prints its size per device.
"""

import os
import sys


def _flag(name, default):
  for arg in sys.argv[1:]:
    if arg.startswith(f"--{name}="):
      return arg.split("=", 1)[1]
  return default


# The fake device count must be fixed before JAX is imported.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           f" --xla_force_host_platform_device_count={_flag('devices', '32')}")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import math  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
from absl import app, flags  # noqa: E402
from flax import nnx  # noqa: E402

from amrsd import models, sharding  # noqa: E402
from amrsd.algorithms.config import AlgorithmConfig  # noqa: E402
from amrsd.algorithms.step import init_opt_state, make_train_step  # noqa: E402

flags.DEFINE_integer("devices", 32, "Fake CPU devices (v5p-64 = 32 chips).")
flags.DEFINE_list("mesh", ["1", "32", "1"], "Mesh shape data,fsdp,tensor.")
flags.DEFINE_integer("rows", 64, "Rows per step (prompts x group).")
flags.DEFINE_integer("prompt", 512, "Student prompt tokens.")
flags.DEFINE_integer("context", 768, "Teacher context tokens (prompt + hint).")
flags.DEFINE_integer("response", 4096, "Response tokens.")
flags.DEFINE_list("runs", ["none:1", "save_dots:1", "full:1", "full:8"],
                  "Measurements as remat:micro_batches.")
flags.DEFINE_list("attention", ["xla", "chunked"], "model.attention of each measurement.")
flags.DEFINE_string("size", "8b", "8b (Qwen3-8B shape) or tiny (a quick check of the script).")
flags.DEFINE_enum("teacher_weights", "current", ["current", "ema", "initial"],
                  "The teacher on the policy's weights, or on an extra copy passed to the step "
                  "(ema: float32, initial: the parameter dtype), sharded like the parameters.")
FLAGS = flags.FLAGS

QWEN3_8B = dict(model_type="qwen3", vocab_size=151936, hidden_size=4096,
                intermediate_size=12288, num_hidden_layers=36, num_attention_heads=32,
                num_key_value_heads=8, head_dim=128, rope_theta=1e6,
                tie_word_embeddings=False, qk_norm=True)
TINY = dict(model_type="qwen3", vocab_size=1024, hidden_size=256, intermediate_size=512,
            num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=4, head_dim=32,
            qk_norm=True)


def measure(config, mesh, remat, micro_batches=1, attention="xla"):
  abstract = nnx.eval_shape(lambda: models.Decoder(config, dtype=jnp.bfloat16, remat=remat,
                                                   attention=attention, rngs=nnx.Rngs(0)))
  abstract.mesh = mesh
  graphdef, state = nnx.split(abstract)
  state = jax.tree.map(
      lambda v: v.replace(jax.ShapeDtypeStruct(v.shape, v.dtype,
                                               sharding=sharding.param_sharding(v, mesh))),
      state, is_leaf=lambda x: isinstance(x, nnx.Variable))
  tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-6))
  # Optimizer moments live where their parameters live (matched by name and shape);
  # counters are replicated.
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  by_name = {path[-1]: v.get_value() for path, v in state.flat_state()}

  def place(path, leaf):
    names = [getattr(k, "key", getattr(k, "name", None)) for k in path]
    param = next((by_name[n] for n in reversed(names) if n in by_name), None)
    where = param.sharding if param is not None and param.shape == leaf.shape else replicated
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=where)

  opt_state = jax.tree_util.tree_map_with_path(
      place, jax.eval_shape(lambda s: init_opt_state(tx, s), state))
  R, N = FLAGS.response, FLAGS.rows

  def rows(width, dtype):
    return jax.ShapeDtypeStruct((N, width), dtype, sharding=sharding.batch_sharding(mesh, 2))

  batch = {
      "student_ids": rows(FLAGS.prompt + R, jnp.int32),
      "student_mask": rows(FLAGS.prompt + R, jnp.int32),
      "teacher_ids": rows(FLAGS.context + R, jnp.int32),
      "teacher_mask": rows(FLAGS.context + R, jnp.int32),
      "response_mask": rows(R, jnp.float32), "logp_old": rows(R, jnp.float32),
      "rewards": jax.ShapeDtypeStruct((N,), jnp.float32, sharding=sharding.batch_sharding(mesh, 1)),
      "has_hint": jax.ShapeDtypeStruct((N,), jnp.float32, sharding=sharding.batch_sharding(mesh, 1)),
  }
  step = make_train_step(graphdef, tx, AlgorithmConfig(name="amrsd", group_size=8),
                         micro_batches=micro_batches)
  start = time.perf_counter()
  step_arg = jax.ShapeDtypeStruct((), jnp.int32, sharding=replicated)
  teacher = teacher_copy(state, FLAGS.teacher_weights)
  compiled = step.lower(state, opt_state, batch, step_arg, teacher).compile()
  seconds = time.perf_counter() - start
  m = compiled.memory_analysis()
  peak = m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes \
      + m.temp_size_in_bytes
  return m, peak, seconds, bytes_per_device(teacher) if teacher is not None else 0


def teacher_copy(state, weights):
  """Abstract copy of the trainable weights (all parameters here) for teacher_weights, or
  None for current: float32 for the EMA, the parameter dtype for the initial weights."""
  if weights == "current":
    return None
  theta, _ = nnx.split_state(state, nnx.Param, ...)
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(
      x.shape, jnp.float32 if weights == "ema" else x.dtype, sharding=x.sharding), theta)


def bytes_per_device(tree) -> int:
  """Largest per-device share of a pytree of sharded ShapeDtypeStructs, in bytes."""
  return sum(math.prod(x.sharding.shard_shape(x.shape)) * jnp.dtype(x.dtype).itemsize
             for x in jax.tree.leaves(tree))


def main(argv):
  del argv
  shape = tuple(int(s) for s in FLAGS.mesh)
  mesh = sharding.make_mesh(shape)
  config = models.ModelConfig(**(QWEN3_8B if FLAGS.size == "8b" else TINY))
  params = sum(v.size for v in jax.tree.leaves(nnx.state(nnx.eval_shape(
      lambda: models.Decoder(config, rngs=nnx.Rngs(0))))))
  print(f"{FLAGS.size}: {params / 1e9:.2f} B parameters (bfloat16), AdamW; mesh {shape} over "
        f"{jax.device_count()} fake CPU devices; {FLAGS.rows} rows, prompt {FLAGS.prompt}, "
        f"teacher context {FLAGS.context}, response {FLAGS.response} tokens")
  gib = 1024 ** 3
  for attention in FLAGS.attention:
    for run in FLAGS.runs:
      remat, micro = run.split(":")
      m, peak, seconds, copy = measure(config, mesh, remat, int(micro), attention)
      print(f"attention={attention:7s} remat={remat:9s} micro_batches={micro}  per device: "
            f"arguments {m.argument_size_in_bytes / gib:7.2f} GiB (of which teacher_weights="
            f"{FLAGS.teacher_weights}'s copy {copy / gib:.2f} GiB)  temporaries "
            f"{m.temp_size_in_bytes / gib:7.2f} GiB  peak estimate {peak / gib:7.2f} GiB  "
            f"(compiled in {seconds:.0f} s)", flush=True)


if __name__ == "__main__":
  app.run(main)
