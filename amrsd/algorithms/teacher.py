"""The teacher forward of a step, on the rows where it can change the loss.

    teacher_fn = make_teacher_fn(graphdef, AlgorithmConfig(name="amrsd"))
    rows = row_bucket(config, batch["has_hint"], batch["rewards"], step)
    batch.update(teacher_fn(params_state, batch, step, teacher_state, rows=rows))
    params_state, opt_state, metrics = train_step(params_state, opt_state, batch, step)

A row needs the teacher when it has a teacher context and its method can use it there
(amrsd.algorithms.registry: AMR-SD and RLSD modulate the advantage, so not on groups
whose advantages are all 0, nor once annealed to 0; docs/algorithms.md 3.1). The
teacher program gathers those rows into a fixed number of slots (`rows`, a ladder size
(amrsd.buckets) the host picks, so it compiles a few times per run, not per step), runs the forward on
them alone and scatters the result back to [N, ...] with zeros elsewhere. Being its own
program, the trainer times it apart from the update (time_teacher).

What it returns, per method's `teacher` kind (batch keys the train step reads in place
of teacher_ids / teacher_mask):
  teacher_logp   [N, R] float32  lT of the sampled tokens ("logprobs": RLSD, AMR-SD)
  teacher_hidden [N, R, D]       final hidden states ("topk": SDPO, OPSD; the step
                                 unembeds them with the teacher's weights at the
                                 student's top-k ids)
  teacher_rows   [N] float32     1 where the teacher ran: the rows the loss may modulate
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from amrsd import buckets
from amrsd.algorithms import registry
from amrsd.algorithms.advantages import group_advantages
from amrsd.algorithms.config import AlgorithmConfig
from amrsd.algorithms.logprobs import response_hidden, sampled_logprobs


def needed_rows(config: AlgorithmConfig, has_hint, rewards, step):
  """[N] bool: rows with a teacher context whose teacher output can change the loss.

  Runs traced (inside the step) and on the host (numpy inputs) with the same result.
  """
  method = registry.get(config.name)
  need = jnp.asarray(has_hint) > 0
  if method.teacher_rows is not None:
    adv, _ = group_advantages(jnp.asarray(rewards), config.group_size, std_norm=config.std_norm)
    need = need & method.teacher_rows(adv, step, config)
  return need


def row_bucket(config: AlgorithmConfig, has_hint, rewards, step, micro_batches: int = 1) -> int:
  """Teacher slots per micro-batch for the teacher program: the most rows any micro-batch
  needs, rounded up to a ladder size (amrsd.buckets; at most the micro-batch's rows); 0 when none.

  has_hint, rewards: [N] of the whole (global) batch, host arrays. step: int.
  """
  need = np.asarray(needed_rows(config, np.asarray(has_hint), np.asarray(rewards, np.float32),
                                step))
  per_part = need.reshape(micro_batches, -1)
  most = int(per_part.sum(axis=1).max())
  return 0 if most == 0 else min(buckets.fit(most), per_part.shape[1])


def make_teacher_fn(graphdef, config: AlgorithmConfig, *, trainable=nnx.Param,
                    micro_batches: int = 1):
  """A jitted teacher_fn(params_state, batch, step, teacher_state=None, *, rows) -> dict.

  batch: the step's layout (amrsd/batch.py) with teacher_ids / teacher_mask / has_hint
  (those may be absent when rows == 0). teacher_state: the trainable part of other
  weights (EMA / initial copy), else the policy's own. rows: teacher slots per
  micro-batch (row_bucket); every needed row must fit. micro_batches: as the train
  step's, so the teacher's activations never exceed one micro-batch's.
  Returns the dict of the module docstring, rows sharded like the batch.
  """
  method = registry.get(config.name)
  if method.teacher == "none":
    raise ValueError(f"algorithm {config.name!r} has no teacher")

  def teacher_fn(params_state, batch, step, teacher_state=None, *, rows):
    diff, frozen = nnx.split_state(params_state, trainable, ...)
    weights = cast_copy(diff, teacher_state)
    keys = ["student_ids", "response_mask", "rewards", "has_hint"]
    if rows > 0:
      keys += ["teacher_ids", "teacher_mask"]
    part = {k: batch[k] for k in keys}
    if micro_batches == 1:
      return teacher_outputs(nnx.merge(graphdef, weights, frozen), config, part, step, rows)
    n = part["rewards"].shape[0]
    parts = jax.tree.map(lambda a: a.reshape((micro_batches, n // micro_batches) + a.shape[1:]),
                         part)
    out = jax.lax.map(lambda p: teacher_outputs(nnx.merge(graphdef, weights, frozen), config, p,
                                                step, rows), parts)
    return jax.tree.map(lambda a: a.reshape((n,) + a.shape[2:]), out)

  return jax.jit(teacher_fn, static_argnames=("rows",))


def cast_copy(diff, teacher_state):
  """The trainable part the teacher runs on: the copy (teacher_state) cast like the
  policy's trainable part `diff`, or `diff` itself when there is no copy."""
  if teacher_state is None:
    return diff
  return jax.tree.map(lambda t, p: t.astype(p.dtype), teacher_state, diff)


def teacher_outputs(model, config: AlgorithmConfig, batch, step, rows=None):
  """The teacher's outputs (module docstring) for one batch, traced; stop-gradient.

  rows: slots to compute (None: every row, no gathering; 0: no forward at all).
  """
  method = registry.get(config.name)
  n, r = batch["response_mask"].shape
  need = needed_rows(config, batch["has_hint"], batch["rewards"], step)
  if rows is None or rows >= n:
    index = jnp.arange(n)
  else:  # needed rows first, in order; the slots left over hold rows that need nothing
    index = jnp.argsort(~need, stable=True)[:rows]
  ran = jnp.zeros((n,), bool)
  if method.teacher == "logprobs":
    out = jnp.zeros((n, r), jnp.float32)
  else:  # hidden states come in the embedding's dtype
    out = jnp.zeros((n, r, model.config.hidden_size), model.embed[...].dtype)
  if rows != 0:
    ids = batch["teacher_ids"][index]
    hidden = response_hidden(model, ids, batch["teacher_mask"][index], ids.shape[1] - r)
    if method.teacher == "logprobs":
      value, _ = sampled_logprobs(model.unembed, hidden, ids[:, -r:],
                                  chunk_size=config.logit_chunk, with_entropy=False)
    else:
      value = hidden.astype(out.dtype)
    keep = need[index].reshape((-1,) + (1,) * (value.ndim - 1))
    out = out.at[index].set(jnp.where(keep, value, 0).astype(out.dtype))
    ran = ran.at[index].set(need[index])
  key = "teacher_logp" if method.teacher == "logprobs" else "teacher_hidden"
  return {key: jax.lax.stop_gradient(out), "teacher_rows": ran.astype(jnp.float32)}
