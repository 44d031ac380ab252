"""The weight copies a run keeps beside the policy: the teacher's EMA or frozen initial
weights (docs/algorithms.md 3.2, `algorithm.teacher_weights`) and the KL reference.

    copies = WeightCopies(algo, graphdef, params, trainable)
    params, opt_state, metrics = train_step(params, opt_state, batch, step,
                                            copies.teacher_state())
    copies.after_update(params)

Only the trainable part of the state is copied (nnx.split_state(params, trainable)): the
frozen rest is the same in the policy and in every copy, so it is shared. With
train.trainable = lora that is the adapters alone (the base weights are frozen, so the
EMA of the model is the base plus the EMA of the adapters); with top_layers it is every
stacked block (their frozen slice never moves, so its copy equals the policy's).

A copy is made with jnp.copy, so it is sharded like the parameters it copies. The EMA is
kept in float32 whatever the parameter dtype: a step of ema_rate times a small parameter
change would round away in bfloat16 (the step casts it back for the teacher forward).
The initial copy keeps the parameter dtype and is read both as OPSD's teacher and as the
k3 KL reference (kl_coef > 0): one copy, never two. The trainer checkpoints `arrays`.
"""

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from amrsd.algorithms import registry
from amrsd.algorithms.logprobs import jitted_token_logprobs


def ema_update(ema, params, *, trainable, rate: float):
  """ema + rate * (theta - ema) in float32, theta the trainable part of params."""
  theta, _ = nnx.split_state(params, trainable, ...)
  return jax.tree.map(lambda e, p: e + rate * (p.astype(jnp.float32) - e), ema, theta)


class WeightCopies:
  """The copies one run needs, by name: "ema" and / or "initial" (none for current
  weights without KL). `arrays` is that dict of nnx.States (trainable part only)."""

  def __init__(self, algo, graphdef, params, trainable):
    self.kind = registry.teacher_weights(algo.name, algo.teacher_weights)
    self.graphdef, self.trainable, self.chunk = graphdef, trainable, algo.logit_chunk
    theta, _ = nnx.split_state(params, trainable, ...)
    self.arrays = {}
    if self.kind == "ema":
      self.arrays["ema"] = jax.tree.map(lambda p: jnp.copy(p).astype(jnp.float32), theta)
    if self.kind == "initial" or algo.kl_coef > 0:
      self.arrays["initial"] = jax.tree.map(jnp.copy, theta)
    self._ema_update = jax.jit(functools.partial(ema_update, trainable=trainable,
                                                 rate=algo.ema_rate), donate_argnums=0)

  def teacher_state(self):
    """The teacher_state argument of the train step (None: the policy's own weights)."""
    return None if self.kind == "current" else self.arrays[self.kind]

  def after_update(self, params):
    """Moves the EMA toward the weights one optimizer step produced."""
    if "ema" in self.arrays:
      self.arrays["ema"] = self._ema_update(self.arrays["ema"], params)

  def reference_logprobs(self, params, batch):
    """[N, R] float32 log-probs of the student rows' response tokens under the initial
    weights (batch["logp_ref"] of amrsd/batch.py); batch is on the mesh."""
    _, frozen = nnx.split_state(params, self.trainable, ...)
    ids, r = batch["student_ids"], batch["response_mask"].shape[1]
    logp, _ = jitted_token_logprobs(self.graphdef, nnx.merge_state(self.arrays["initial"], frozen),
                                    ids, batch["student_mask"], start=ids.shape[1] - r,
                                    chunk_size=self.chunk, with_entropy=False)
    return logp * batch["response_mask"]
