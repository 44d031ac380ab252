"""What may change between a run and its resume: the saved config against the new one.

A resume continues one run, so fields that change what is trained, on what, or how
(the method and its coefficients, the group size, the model, the trainable set, the
dtype, the data, the prompt, the seed) are refused unless the user says so
(`--allow_config_change`); anything else (workdir, logging, evaluation and checkpoint
cadence, optimizer settings, more steps) passes with a line in the log.
"""

import json

from amrsd.algorithms import registry

# Dotted field names, or section prefixes ending in ".", that change the run's meaning.
MEANING = ("algorithm.", "rollout.group_size", "rollout.max_turns", "model.path",
           "model.dtype", "train.trainable", "train.top_layers", "train.lora_rank",
           "train.lora_alpha", "train.lora_targets",
           "data.", "prompts.", "seed", "reflection.hint_source", "reflection.teacher_context",
           "reflection.leak_")
_ABSENT = "<absent>"


class ConfigChangeError(ValueError):
  """A resume with a config that changes the run's meaning."""


def flatten(tree: dict, prefix: str = "") -> dict:
  """{"a": {"b": 1}} -> {"a.b": 1}; tuples become lists (as in the saved JSON)."""
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(flatten(value, f"{prefix}{key}."))
    else:
      flat[f"{prefix}{key}"] = json.loads(json.dumps(value))
  return flat


def anneal_horizon(flat: dict) -> int:
  """The annealing horizon a config implies (algorithm.anneal_steps; -1 = train.steps // 2)."""
  steps = flat.get("algorithm.anneal_steps", -1)
  return steps if steps > 0 else max(1, flat["train.steps"] // 2)


def config_changes(saved: dict, new: dict) -> tuple[list[str], list[str]]:
  """(refused, allowed) changes from the saved to the new config, as "field: old -> new".

  saved, new: nested dicts (the JSON of the configs). The annealing horizon is compared
  as implied (anneal_steps=-1 means half of train.steps), so pinning it keeps a resume
  with more steps equal to the saved run; the teacher weights too ("default" is the
  method's own; a run saved before the field existed ran on the current weights).
  """
  old, cur = flatten(saved), flatten(new)
  for flat in (old, cur):
    if "train.steps" in flat:
      flat["algorithm.anneal_steps"] = anneal_horizon(flat)
    if "algorithm.name" in flat:
      flat["algorithm.teacher_weights"] = registry.teacher_weights(
          flat["algorithm.name"], flat.get("algorithm.teacher_weights", "current"))
  refused, allowed = [], []
  for field in sorted(set(old) | set(cur)):
    before, after = old.get(field, _ABSENT), cur.get(field, _ABSENT)
    if before == after:
      continue
    line = f"{field}: {before!r} -> {after!r}"
    if before is not _ABSENT and field.startswith(MEANING):
      refused.append(line)
    else:
      allowed.append(line)
  return refused, allowed


def check_resume(saved: tuple[int, dict] | None, config, *, allow_change: bool) -> list[str]:
  """Compares the run's saved config with `config` (a ConfigDict) before a resume.

  saved: (step, checkpoint metadata with "config") or None for a new run. Pins the
  annealing horizon of `config` (edited in place) to the saved run's, and returns the log
  lines of the changes that pass. Raises ConfigChangeError naming every field that
  changes the run's meaning, unless allow_change.
  """
  if saved is None:
    return []
  step, meta = saved
  old = meta["config"]
  if config.algorithm.anneal_steps <= 0 and "train.steps" in flatten(old):
    config.algorithm.anneal_steps = anneal_horizon(flatten(old))
  refused, allowed = config_changes(old, json.loads(config.to_json_best_effort()))
  if refused and not allow_change:
    raise ConfigChangeError(
        f"the config differs from the one the run in {config.workdir!r} was saved with "
        f"(step {step}) in fields that change what is trained: {'; '.join(refused)}. Use "
        "another --config.workdir for a new run, or pass --allow_config_change to resume "
        "anyway")
  return [f"resume: config.{line}" + (" (allowed by --allow_config_change)"
                                      if line in refused else "")
          for line in refused + allowed]
