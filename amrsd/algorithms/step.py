"""One jitted training step for all five methods (docs/algorithms.md section 1, steps 3-8).

    train_step = make_train_step(graphdef, tx, AlgorithmConfig(name="amrsd"))
    opt_state = init_opt_state(tx, params_state)
    params_state, opt_state, metrics = train_step(params_state, opt_state, batch, step)

The batch layout (keys, shapes, dtypes) is documented where the batch is built, in
amrsd/batch.py; check_batch checks it.

Decisions:
- Gradient clipping belongs to the optax chain the caller passes
  (e.g. optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-6))); the step
  reports the unclipped global norm as grad_norm.
- Trainable subset: `trainable` is an nnx filter (default nnx.Param: everything).
  The state is split into trainable and frozen parts; only the trainable part gets
  gradients and optimizer state (a LoRA filter, or a path filter such as
  nnx.PathContains("lm_head")). Layer parameters are stacked [L, ...], so "top N
  blocks" is a per-layer update mask inside the optax chain, not a filter.
- A non-finite loss or gradient leaves parameters and optimizer state unchanged and
  sets update_skipped = 1; the trainer stops on it and keeps the last checkpoint.
  update_norm and param_norm (global L2 norms of the applied update and of the
  trainable weights before it) let the trainer stop a finite blow-up too.
- The teacher runs on the same weights (stop-gradient) unless `teacher_state` is
  given: the trainable part of other weights (the EMA or the frozen initial copy of
  amrsd/teacher_weights.py, any float dtype), merged with the same frozen part.
- The teacher forward runs in this program on every row, or before it in the teacher
  program of amrsd/algorithms/teacher.py on the rows that need it (the trainer's way:
  timed apart, fewer rows); the batch then carries its outputs (teacher_rows, ...).
  Either way only rows the teacher ran on (teacher_rows) get a teacher signal.
"""

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from amrsd.algorithms import losses, registry
from amrsd.algorithms import teacher as teacher_lib
from amrsd.algorithms.advantages import group_advantages
from amrsd.algorithms.config import AlgorithmConfig
from amrsd.algorithms.logprobs import response_hidden, sampled_logprobs, topk_logprobs

# Every step reports the same keys, whatever the method, so metric files line up.
METHOD_STAT_DEFAULTS = ("gate_fraction", "cig_mean_pos", "cig_std_pos", "cig_mean_neg",
                        "cig_std_neg", "anneal_strength", "clip_fraction", "clip_fraction_low",
                        "clip_fraction_high", "distill_divergence", "kl")


def make_train_step(graphdef, optimizer_tx, algo_config: AlgorithmConfig, *,
                    trainable=nnx.Param, micro_batches: int = 1):
  """A jitted train_step(params_state, opt_state, batch, step, teacher_state=None).

  params_state: the full nnx.State of the model (nnx.split); opt_state: from
  init_opt_state(optimizer_tx, params_state, trainable). Both are donated.
  step: int32 scalar (drives the annealing). Returns (params_state, opt_state,
  metrics: dict of float32 scalars, see metric_names()).
  micro_batches > 1 accumulates gradients over that many slices of whole groups
  (activation memory / micro_batches) with the same result, see _accumulated.
  """
  if micro_batches < 1:
    raise ValueError(f"micro_batches={micro_batches} must be >= 1")

  def train_step(params_state, opt_state, batch, step, teacher_state=None):
    diff, frozen = nnx.split_state(params_state, trainable, ...)
    if micro_batches == 1:
      grads, metrics = _grads_and_metrics(graphdef, algo_config, diff, frozen, batch, step,
                                          teacher_state)
    else:
      grads, metrics = _accumulated(graphdef, algo_config, diff, frozen, batch, step,
                                    teacher_state, micro_batches)
    updates, new_opt_state = optimizer_tx.update(grads, opt_state, diff)
    new_diff = optax.apply_updates(diff, updates)
    ok = jnp.isfinite(metrics["loss"]) & jnp.isfinite(metrics["grad_norm"])
    keep = lambda new, old: jnp.where(ok, new, old)
    new_diff = jax.tree.map(keep, new_diff, diff)
    new_opt_state = jax.tree.map(keep, new_opt_state, opt_state)
    metrics["update_skipped"] = 1.0 - ok.astype(jnp.float32)
    # For the divergence guard (amrsd/divergence.py): the applied step against the
    # trained weights' norm, in float32 whatever the parameter dtype.
    as32 = lambda tree: jax.tree.map(lambda x: x.astype(jnp.float32), tree)
    metrics["update_norm"] = optax.global_norm(jax.tree.map(jnp.subtract, as32(new_diff),
                                                            as32(diff)))
    metrics["param_norm"] = optax.global_norm(as32(diff))
    return nnx.merge_state(new_diff, frozen), new_opt_state, metrics

  return jax.jit(train_step, donate_argnums=(0, 1))


def make_grad_fn(graphdef, algo_config: AlgorithmConfig, *, trainable=nnx.Param):
  """A jitted grad_fn(params_state, batch, step, teacher_state=None) -> (grads, metrics).

  grads is an nnx.State over the trainable part; for gradient accumulation over
  micro-batches and for tests. Nothing is donated.
  """
  def grad_fn(params_state, batch, step, teacher_state=None):
    diff, frozen = nnx.split_state(params_state, trainable, ...)
    return _grads_and_metrics(graphdef, algo_config, diff, frozen, batch, step, teacher_state)

  return jax.jit(grad_fn)


def init_opt_state(optimizer_tx, params_state, trainable=nnx.Param):
  """Optimizer state over the trainable part of params_state."""
  diff, _ = nnx.split_state(params_state, trainable, ...)
  return optimizer_tx.init(diff)


def metric_names(algo_config: AlgorithmConfig) -> tuple[str, ...]:
  """Keys of the metrics dict the step returns."""
  names = ("loss", "reward_mean", "reward_std", "accuracy", "zero_variance_fraction",
           "response_length_mean", "response_length_max", "response_clip_fraction",
           "entropy", "logprob_gap_max", "logprob_gap_mean", "hint_fraction",
           "teacher_token_mismatch", "grad_norm") + METHOD_STAT_DEFAULTS
  return names + ("update_skipped", "update_norm", "param_norm")


def check_batch(batch, algo_config: AlgorithmConfig):
  """Raises ValueError naming the key and shapes when the batch does not fit the layout."""
  method = registry.get(algo_config.name)
  required = ["student_ids", "student_mask", "response_mask", "logp_old", "rewards"]
  # Teacher outputs from amrsd.algorithms.teacher, or the teacher rows to compute them from.
  precomputed = "teacher_rows" in batch
  if method.teacher != "none":
    required.append("has_hint")
    if precomputed:
      required.append("teacher_logp" if method.teacher == "logprobs" else "teacher_hidden")
    else:
      required += ["teacher_ids", "teacher_mask"]
  if algo_config.kl_coef > 0:
    required.append("logp_ref")
  missing = [k for k in required if k not in batch]
  if missing:
    raise ValueError(f"batch for algorithm {algo_config.name!r} is missing {missing}; "
                     f"it has {sorted(batch)} (layout: amrsd/batch.py)")
  n, t = batch["student_ids"].shape
  r = batch["response_mask"].shape[1]
  expect = {"student_mask": (n, t), "response_mask": (n, r), "logp_old": (n, r),
            "rewards": (n,), "has_hint": (n,), "logp_ref": (n, r), "teacher_rows": (n,),
            "teacher_logp": (n, r)}
  if "teacher_hidden" in batch:
    expect["teacher_hidden"] = (n, r) + tuple(batch["teacher_hidden"].shape[2:])
  if "teacher_ids" in batch:
    expect["teacher_mask"] = batch["teacher_ids"].shape
    if batch["teacher_ids"].shape[0] != n or batch["teacher_ids"].shape[1] <= r:
      raise ValueError(f"batch['teacher_ids'] has shape {batch['teacher_ids'].shape}; "
                       f"expected [{n}, P' + {r}] with P' >= 1")
  for key, shape in expect.items():
    if key in batch and tuple(batch[key].shape) != tuple(shape):
      raise ValueError(f"batch[{key!r}] has shape {tuple(batch[key].shape)}; expected "
                       f"{tuple(shape)} (N={n} rows, T={t} columns, R={r} response tokens)")
  if t <= r:
    raise ValueError(f"batch['student_ids'] has {t} columns but the response has R={r}: "
                     "rows must be [prompt (P >= 1) | response (R)]")
  if n % algo_config.group_size:
    raise ValueError(f"batch has N={n} rows, not a multiple of group_size="
                     f"{algo_config.group_size}")


def _accumulated(graphdef, config, diff, frozen, batch, step, teacher_state, count):
  """Gradients and metrics of the whole batch from `count` micro-batches of whole groups.

  Each micro-batch's loss is weighted by its share of the batch's normalizer (valid
  tokens for token-mean, rows with tokens for seq-mean-token-mean, rows otherwise), so
  the summed gradient is the full batch's. Metrics are averaged with the same weights,
  except maxima (*_max), which are maximized.
  """
  rows = batch["rewards"].shape[0]
  if rows % (count * config.group_size):
    raise ValueError(f"{rows} rows do not split into {count} micro-batches of whole groups "
                     f"of {config.group_size}; change train.micro_batches")
  parts = jax.tree.map(lambda a: a.reshape((count, rows // count) + a.shape[1:]), batch)
  mask = parts["response_mask"].astype(jnp.float32)
  if config.loss_agg == "token-mean":
    share = jnp.sum(mask, axis=(1, 2))
  elif config.loss_agg == "seq-mean-token-mean":
    share = jnp.sum((jnp.sum(mask, axis=2) > 0).astype(jnp.float32), axis=1)
  else:
    share = jnp.ones((count,), jnp.float32)
  weights = share / jnp.maximum(jnp.sum(share), 1.0)

  def one(carry, part_and_weight):
    part, weight = part_and_weight
    grads, metrics = _grads_and_metrics(graphdef, config, diff, frozen, part, step,
                                        teacher_state)
    acc_grads, acc_metrics = carry
    acc_grads = jax.tree.map(lambda a, g: a + weight * g.astype(jnp.float32), acc_grads, grads)
    acc_metrics = {k: jnp.maximum(acc_metrics[k], v) if k.endswith("_max")
                   else acc_metrics[k] + weight * v for k, v in metrics.items()}
    return (acc_grads, acc_metrics), None

  shapes = jax.eval_shape(lambda p: _grads_and_metrics(graphdef, config, diff, frozen, p, step,
                                                       teacher_state),
                          jax.tree.map(lambda a: a[0], parts))
  # Sums stay in float32 even for bfloat16 parameters.
  init = jax.tree.map(lambda x: jnp.zeros(x.shape, jnp.float32), shapes)
  init[1].update({k: jnp.full((), -jnp.inf) for k in init[1] if k.endswith("_max")})
  (grads, metrics), _ = jax.lax.scan(one, tuple(init), (parts, weights))
  grads = jax.tree.map(lambda g, like: g.astype(like.dtype), grads, shapes[0])
  metrics["grad_norm"] = optax.global_norm(grads)
  return grads, metrics


def _grads_and_metrics(graphdef, config, diff, frozen, batch, step, teacher_state):
  check_batch(batch, config)
  method = registry.get(config.name)
  if teacher_state is not None and config.teacher_forward == "stacked":
    raise ValueError("teacher_forward='stacked' runs teacher rows on the policy's own weights; "
                     "pass teacher_state=None or use teacher_forward='separate'")
  mask = batch["response_mask"].astype(jnp.float32)
  n, r = mask.shape
  targets = batch["student_ids"][:, -r:]
  has_hint = batch.get("has_hint", jnp.zeros((n,), jnp.float32)).astype(jnp.float32)
  adv, zero_variance = group_advantages(batch["rewards"], config.group_size,
                                        std_norm=config.std_norm)
  stacked = method.teacher != "none" and "teacher_rows" not in batch and \
      config.teacher_forward == "stacked"
  teacher_out = {}
  if method.teacher != "none":
    # Outside the differentiated function: no backward over teacher rows.
    teacher = nnx.merge(graphdef, teacher_lib.cast_copy(diff, teacher_state), frozen)
    if "teacher_rows" in batch:  # computed by the teacher program
      teacher_out = {k: batch[k] for k in ("teacher_logp", "teacher_hidden", "teacher_rows")
                     if k in batch}
    elif not stacked:
      teacher_out = teacher_lib.teacher_outputs(teacher, config, batch, step)
    else:
      teacher_out = {"teacher_rows": teacher_lib.needed_rows(config, has_hint, batch["rewards"],
                                                             step).astype(jnp.float32)}
    teacher_out = jax.lax.stop_gradient(teacher_out)
    # Rows the teacher did not run on carry no teacher signal.
    has_hint = has_hint * teacher_out["teacher_rows"]

  def loss_fn(diff):
    model = nnx.merge(graphdef, diff, frozen)
    if stacked:
      hidden, t_hidden = _stacked_hidden(model, batch, r)
      t_hidden = jax.lax.stop_gradient(t_hidden)
    else:
      hidden, t_hidden = _student_hidden(model, batch, r), teacher_out.get("teacher_hidden")
    inputs = dict(old_logp=batch["logp_old"].astype(jnp.float32), mask=mask, adv=adv,
                  has_hint=has_hint)
    if method.teacher == "topk":
      t_unembed = model.unembed if stacked else teacher.unembed
      logp, entropy, s_top, t_top = topk_logprobs(
          model.unembed, t_unembed, hidden, t_hidden, targets, method.topk(config),
          chunk_size=config.logit_chunk)
      inputs.update(student_topk=s_top, teacher_topk=t_top)
    else:
      logp, entropy = sampled_logprobs(model.unembed, hidden, targets,
                                       chunk_size=config.logit_chunk)
      if method.teacher == "logprobs":
        t_logp = teacher_out.get("teacher_logp")
        if stacked:
          t_logp, _ = sampled_logprobs(model.unembed, t_hidden, targets,
                                       chunk_size=config.logit_chunk, with_entropy=False)
        inputs["teacher_logp"] = jax.lax.stop_gradient(t_logp)
    loss, stats = method.loss(config, registry.LossInputs(logp=logp, **inputs), step)
    if config.kl_coef > 0:
      kl = losses.k3_kl(logp, batch["logp_ref"].astype(jnp.float32))
      loss = loss + config.kl_coef * losses.aggregate(kl, mask, config.loss_agg)
      stats["kl"] = losses.masked_mean(jax.lax.stop_gradient(kl), mask)
    return loss, (jax.lax.stop_gradient(logp), entropy, stats)

  (loss, (logp, entropy, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(diff)
  metrics = {name: jnp.zeros((), jnp.float32) for name in METHOD_STAT_DEFAULTS}
  metrics.update(stats)
  metrics.update(_batch_metrics(batch, config, mask, logp, entropy, zero_variance,
                                batch.get("has_hint", jnp.zeros((n,))).astype(jnp.float32)))
  metrics["loss"] = loss
  metrics["grad_norm"] = optax.global_norm(grads)
  return grads, {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()}


def _student_hidden(model, batch, r):
  ids = batch["student_ids"]
  return response_hidden(model, ids, batch["student_mask"], ids.shape[1] - r)


def _stacked_hidden(model, batch, r):
  """Student and teacher rows through one forward: contexts left-padded to one length."""
  s_ids, s_mask = batch["student_ids"], batch["student_mask"]
  t_ids, t_mask = batch["teacher_ids"], batch["teacher_mask"]
  width = max(s_ids.shape[1], t_ids.shape[1])
  pad = lambda a, w: jnp.pad(a, ((0, 0), (w - a.shape[1], 0)))
  ids = jnp.concatenate([pad(s_ids, width), pad(t_ids, width)])
  mask = jnp.concatenate([pad(s_mask.astype(jnp.int32), width),
                          pad(t_mask.astype(jnp.int32), width)])
  hidden = response_hidden(model, ids, mask, width - r)
  n = s_ids.shape[0]
  return hidden[:n], hidden[n:]


def _batch_metrics(batch, config, mask, logp, entropy, zero_variance, has_hint):
  rewards = batch["rewards"].astype(jnp.float32)
  lengths = jnp.sum(mask, axis=1)
  gap = jnp.abs(batch["logp_old"].astype(jnp.float32) - logp)
  metrics = {
      "reward_mean": jnp.mean(rewards),
      "reward_std": jnp.std(rewards),
      "accuracy": jnp.mean((rewards >= config.success_threshold).astype(jnp.float32)),
      "zero_variance_fraction": jnp.mean(zero_variance.astype(jnp.float32)),
      "response_length_mean": jnp.mean(lengths),
      "response_length_max": jnp.max(lengths),
      # A response that fills the whole budget R was most likely cut off.
      "response_clip_fraction": jnp.mean((lengths >= mask.shape[1]).astype(jnp.float32)),
      "entropy": losses.masked_mean(entropy, mask),
      "logprob_gap_max": jnp.max(jnp.where(mask > 0, gap, 0.0)),
      "logprob_gap_mean": losses.masked_mean(gap, mask),
      "hint_fraction": jnp.mean(has_hint),
      "teacher_token_mismatch": jnp.zeros((), jnp.float32),
  }
  if "teacher_ids" in batch:  # the teacher must score exactly the student's response tokens
    r = mask.shape[1]
    differs = batch["teacher_ids"][:, -r:] != batch["student_ids"][:, -r:]
    metrics["teacher_token_mismatch"] = losses.masked_mean(differs.astype(jnp.float32), mask)
  return metrics
