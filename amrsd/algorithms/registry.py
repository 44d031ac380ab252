"""The five methods by name: what each needs from the teacher and its loss.

A method is a small record plus one loss function (docs/algorithms.md section 2), not a
subclass. The step computes what `teacher` asks for and calls `loss`.
"""

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

from amrsd.algorithms import cig, losses
from amrsd.algorithms.config import METHODS, TEACHER_WEIGHTS, AlgorithmConfig
from amrsd.reflection import TEACHER_CONTEXTS


@dataclasses.dataclass(frozen=True)
class LossInputs:
  """Arrays a method's loss reads. N rows, R response tokens, k top-k ids.

  logp: [N, R] float32 student log-probs of the sampled tokens (differentiable).
  old_logp: [N, R] float32 sampler's log-probs. mask: [N, R] float32 valid tokens.
  adv: [N] float32 group advantages. has_hint: [N] float32, 1 where a teacher context exists.
  teacher_logp: [N, R] float32 stop-gradient teacher log-probs (teacher == "logprobs").
  student_topk, teacher_topk: [N, R, k] log-softmax at the student's top-k ids
  (teacher == "topk"; the teacher side is stop-gradient).
  """
  logp: Any
  old_logp: Any
  mask: Any
  adv: Any
  has_hint: Any
  teacher_logp: Any = None
  student_topk: Any = None
  teacher_topk: Any = None


@dataclasses.dataclass(frozen=True)
class Method:
  """One method: everything the trainer and the step need to know about it.

  teacher: what the step computes from the teacher rows: "none" | "logprobs" (the
  sampled tokens' log-probs) | "topk" (log-softmax at the student's top-k ids).
  context: what the teacher is conditioned on, one of amrsd.reflection.TEACHER_CONTEXTS.
  needs_peers: whether its advantages compare rollouts of a group (group_size >= 2).
  teacher_weights: what config.teacher_weights = "default" means for it (section 2):
  "current" | "ema" | "initial"; "current" for a method without a teacher.
  loss(config, inputs, step) -> (loss scalar, stats dict of float32 scalars).
  topk(config) -> k for teacher == "topk".
  teacher_rows(adv [N], step, config) -> [N] bool: rows with a teacher context whose
  teacher output can change the loss; the teacher forward runs on those only. None: all.
  """
  name: str
  teacher: str
  context: str
  needs_peers: bool
  loss: Callable
  topk: Callable = lambda config: 0
  teacher_weights: str = "current"
  teacher_rows: Callable | None = None


def get(name: str) -> Method:
  """The registered method `name`; a clear error lists the valid names."""
  if name not in REGISTRY:
    raise ValueError(f"unknown algorithm {name!r}; choose one of {', '.join(REGISTRY)}")
  return REGISTRY[name]


def teacher_weights(name: str, value: str) -> str:
  """The weights method `name`'s teacher runs on: `value` (config.teacher_weights), with
  "default" resolved to the method's own. Raises ValueError for a copy a method without
  a teacher would never read."""
  method = get(name)
  if value == "default":
    return method.teacher_weights
  if method.teacher == "none" and value != "current":
    raise ValueError(f"config.algorithm.teacher_weights={value!r}: {name} has no teacher; "
                     "use default or current")
  return value


def grpo_loss(config: AlgorithmConfig, x: LossInputs, step):
  del step
  return _ppo_with(config, x, jnp.broadcast_to(x.adv[:, None], x.mask.shape), {})


def rlsd_loss(config: AlgorithmConfig, x: LossInputs, step):
  token_adv, stats = cig.rlsd_token_advantages(x.adv, x.teacher_logp, x.old_logp, x.mask,
                                               x.has_hint, step, config)
  return _ppo_with(config, x, token_adv, stats)


def amrsd_loss(config: AlgorithmConfig, x: LossInputs, step):
  # CIG's baseline b_t (docs/algorithms.md 3.2): the trainer's own log-prob, a constant.
  baseline = jax.lax.stop_gradient(x.logp) if config.cig_baseline == "trainer" else x.old_logp
  token_adv, stats = cig.amrsd_token_advantages(x.adv, x.teacher_logp, baseline, x.mask,
                                                x.has_hint, step, config)
  return _ppo_with(config, x, token_adv, stats)


def sdpo_loss(config: AlgorithmConfig, x: LossInputs, step):
  """Top-k + tail generalized JSD, weighted by min(rho, is_clip); rows without context masked."""
  del step
  weights = losses.clipped_is_weight(x.logp, x.old_logp, config.sdpo_is_clip)
  return _distill(config, x, config.sdpo_alpha, weights)


def opsd_loss(config: AlgorithmConfig, x: LossInputs, step):
  """JSD (beta) over the student's top-k + tail; on-policy, so no importance weight."""
  del step
  return _distill(config, x, config.opsd_beta, None)


def _ppo_with(config, x, token_adv, stats):
  tis = (losses.truncated_is_weight(x.logp, x.old_logp, config.tis_cap)
         if config.tis_cap > 0 else None)
  loss, clip_stats = losses.ppo_clip_loss(x.logp, x.old_logp, token_adv, x.mask,
                                          eps_lo=config.eps_lo, eps_hi=config.eps_hi,
                                          agg=config.loss_agg, tis_weight=tis)
  return loss, {**stats, **clip_stats}


def _distill(config, x, alpha, weights):
  mask = x.mask * (x.has_hint > 0)[:, None].astype(jnp.float32)
  loss, divergence = losses.topk_distillation_loss(x.student_topk, x.teacher_topk, mask,
                                                   alpha=alpha, weights=weights,
                                                   agg=config.loss_agg)
  return loss, {"distill_divergence": losses.masked_mean(jax.lax.stop_gradient(divergence),
                                                         mask)}


REGISTRY = {
    "grpo": Method("grpo", "none", "none", True, grpo_loss),
    "rlsd": Method("rlsd", "logprobs", "reference", True, rlsd_loss, teacher_rows=cig.rlsd_rows),
    "amrsd": Method("amrsd", "logprobs", "hint", True, amrsd_loss, teacher_rows=cig.amrsd_rows),
    "sdpo": Method("sdpo", "topk", "peer", True, sdpo_loss, lambda config: config.sdpo_topk,
                   teacher_weights="ema"),
    "opsd": Method("opsd", "topk", "derive", False, opsd_loss, lambda config: config.opsd_topk,
                   teacher_weights="initial"),
}
assert tuple(REGISTRY) == METHODS, "registry and config.METHODS must list the same methods"
assert all(m.context in TEACHER_CONTEXTS for m in REGISTRY.values())
assert all(m.teacher_weights in TEACHER_WEIGHTS[1:] for m in REGISTRY.values())
