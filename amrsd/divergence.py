"""Divergence signals: a run that has gone wrong while every number is still finite.

A learning rate far too large leaves no NaN behind: the policy turns uniform (entropy
near log V), its softmax saturates (zero gradient although rewards differ within a
group), the weights jump (an update large against their norm), and held-out accuracy
falls. These pure functions read a step's metrics (host floats, see
amrsd.algorithms.step.metric_names) and the evaluation history, and return the first
signal that fired, or None; the trainer stops on it (config.guard sets the thresholds).
"""

import dataclasses
import math

# The learning rates the recipes use, per trainable set; outside this range a run is most
# likely a typo (1e6 for 1e-6), so the trainer warns (it does not stop: experiments may
# go there on purpose).
LEARNING_RATE_RANGE = {"full": (1e-8, 1e-3), "top_layers": (1e-8, 1e-3), "lora": (1e-7, 1e-2)}


@dataclasses.dataclass(frozen=True)
class Divergence:
  """One fired signal. judges_input: it was measured on the weights the step started
  from (rollout entropy, gradient), so the checkpoint of the step before is suspect
  too; otherwise it judges the step's own update or result."""
  signal: str
  step: int
  value: float
  threshold: float
  meaning: str
  judges_input: bool

  def describe(self) -> str:
    return (f"divergence at step {self.step}: {self.signal} = {self.value:.4g} (threshold "
            f"{self.threshold:.4g}): {self.meaning}")


def step_signal(metrics: dict, *, step: int, guard, vocab_size: int) -> Divergence | None:
  """The first signal among a train step's metrics (entropy, grad_norm,
  zero_variance_fraction, update_norm, param_norm), or None."""
  if not guard.enabled:
    return None
  limit = guard.max_entropy_fraction * math.log(vocab_size)
  if metrics["entropy"] > limit:
    return Divergence("entropy", step, metrics["entropy"], limit,
                      f"the rollouts were sampled almost uniformly over the {vocab_size} "
                      "tokens (maximum log V = "
                      f"{math.log(vocab_size):.2f} nats)", judges_input=True)
  if guard.zero_gradient and metrics["grad_norm"] == 0.0 and metrics["zero_variance_fraction"] < 1.0:
    return Divergence("grad_norm", step, 0.0, 0.0,
                      f"the gradient is exactly zero although "
                      f"{1.0 - metrics['zero_variance_fraction']:.0%} of the groups have reward "
                      "variance (a saturated softmax or dead weights)", judges_input=True)
  ratio = metrics["update_norm"] / max(metrics["param_norm"], 1e-30)
  if ratio > guard.max_update_ratio:
    return Divergence("update_norm / param_norm", step, ratio, guard.max_update_ratio,
                      f"the update (norm {metrics['update_norm']:.4g}) is large against the "
                      f"trained weights (norm {metrics['param_norm']:.4g})", judges_input=False)
  return None


def eval_signal(accuracy: float, best_before: float | None, *, step: int, guard,
                problems: int) -> Divergence | None:
  """Held-out greedy accuracy collapsing against the best earlier evaluation of the run.

  problems: how many held-out problems the accuracy is over; below
  guard.accuracy_min_problems the check is off (a few problems are too noisy).
  """
  if not guard.enabled or best_before is None or problems < guard.accuracy_min_problems:
    return None
  if best_before - accuracy >= guard.accuracy_drop:
    return Divergence("eval_accuracy", step, accuracy, best_before - guard.accuracy_drop,
                      f"held-out accuracy fell from a best of {best_before:.3f}",
                      judges_input=False)
  if accuracy == 0.0 and best_before >= guard.accuracy_zero_from:
    return Divergence("eval_accuracy", step, accuracy, 0.0,
                      f"held-out accuracy fell to 0 from a best of {best_before:.3f}",
                      judges_input=False)
  return None


def stop_message(found: Divergence, good_step: int | None, directory: str,
                 learning_rate: float) -> str:
  """What stopped the run, where it can resume from, and what to change."""
  resume = (f"the last good checkpoint is step {good_step} in {directory}, and running again "
            "resumes from it" if good_step is not None else
            "no checkpoint was confirmed good, so running again starts over")
  return (f"{found.describe()}. The run stopped before saving step {found.step}; {resume}. "
          f"Lower train.learning_rate (now {learning_rate:g}) or check the data; config.guard "
          "sets the thresholds (guard.enabled=False turns the checks off).")


def learning_rate_warning(config) -> str | None:
  """A warning line when train.learning_rate is far outside the recipes' range."""
  low, high = LEARNING_RATE_RANGE[config.train.trainable]
  lr = config.train.learning_rate
  if low <= lr <= high:
    return None
  return (f"warning: config.train.learning_rate={lr:g} is far outside the usual range "
          f"[{low:g}, {high:g}] for train.trainable={config.train.trainable!r}; the run may "
          "diverge (the guard stops it, see config.guard)")


def validate_guard(guard) -> None:
  """Raises ValueError naming a config.guard field whose value cannot work."""
  g = guard
  for field, ok, valid in (
      ("max_entropy_fraction", 0.0 < g.max_entropy_fraction <= 1.0, "in (0, 1]"),
      ("max_update_ratio", g.max_update_ratio > 0.0, "> 0"),
      ("accuracy_drop", 0.0 < g.accuracy_drop <= 1.0, "in (0, 1]"),
      ("accuracy_zero_from", 0.0 <= g.accuracy_zero_from <= 1.0, "in [0, 1]"),
      ("accuracy_min_problems", g.accuracy_min_problems >= 1, ">= 1")):
    if not ok:
      raise ValueError(f"config.guard.{field}={g[field]!r} must be {valid}")
