"""Which config changes a resume refuses, which it lets pass, and the pinned horizon."""

import json

import pytest

from amrsd import config as config_lib
from amrsd.resume import ConfigChangeError, check_resume, config_changes


def _saved(config):
  return json.loads(config.to_json_best_effort())


def test_meaning_changes_are_refused_and_the_rest_allowed():
  old = config_lib.default_config()
  new = config_lib.default_config()
  new.algorithm.name = "grpo"
  new.rollout.group_size = 4
  new.train.trainable = "lora"
  new.model.dtype = "bfloat16"
  new.data.train_path = "other.jsonl"
  new.workdir = "elsewhere"
  new.log.progress = False
  new.eval.every_steps = 3
  refused, allowed = config_changes(_saved(old), _saved(new))
  assert refused == ["algorithm.name: 'amrsd' -> 'grpo'", "data.train_path: '' -> 'other.jsonl'",
                     "model.dtype: 'float32' -> 'bfloat16'", "rollout.group_size: 8 -> 4",
                     "train.trainable: 'full' -> 'lora'"]
  assert allowed == ["eval.every_steps: 0 -> 3", "log.progress: True -> False",
                     "workdir: 'runs/default' -> 'elsewhere'"]


def test_refusal_names_the_fields_unless_allowed():
  old = config_lib.default_config()
  new = config_lib.default_config()
  new.seed = 3
  with pytest.raises(ConfigChangeError, match=r"saved with \(step 5\).*seed: 0 -> 3.*"
                                              "--allow_config_change"):
    check_resume((5, {"config": _saved(old)}), new, allow_change=False)
  lines = check_resume((5, {"config": _saved(old)}), new, allow_change=True)
  assert lines == ["resume: config.seed: 0 -> 3 (allowed by --allow_config_change)"]


def test_more_steps_keep_the_saved_annealing_horizon():
  old = config_lib.default_config()
  old.train.steps = 20           # anneal_steps = -1: horizon 10
  new = config_lib.default_config()
  new.train.steps = 50           # would be 25 unpinned
  lines = check_resume((20, {"config": _saved(old)}), new, allow_change=False)
  assert new.algorithm.anneal_steps == 10
  assert lines == ["resume: config.train.steps: 20 -> 50"]
  # An explicit horizon that differs is a change of method.
  other = config_lib.default_config()
  other.algorithm.anneal_steps = 7
  with pytest.raises(ConfigChangeError, match="algorithm.anneal_steps: 10 -> 7"):
    check_resume((20, {"config": _saved(old)}), other, allow_change=False)


def test_a_new_run_has_nothing_to_compare():
  assert check_resume(None, config_lib.default_config(), allow_change=False) == []


def test_teacher_weights_are_compared_as_resolved():
  old = config_lib.default_config()
  old.algorithm.name = "sdpo"
  same = config_lib.default_config()
  same.algorithm.name, same.algorithm.teacher_weights = "sdpo", "ema"  # SDPO's default
  assert config_changes(_saved(old), _saved(same)) == ([], [])
  other = config_lib.default_config()
  other.algorithm.name, other.algorithm.teacher_weights = "sdpo", "current"
  with pytest.raises(ConfigChangeError, match="algorithm.teacher_weights: 'ema' -> 'current'"):
    check_resume((3, {"config": _saved(old)}), other, allow_change=False)
  # A run saved before the field existed had its teacher on the current weights.
  before = _saved(old)
  del before["algorithm"]["teacher_weights"]
  refused, _ = config_changes(before, _saved(same))
  assert refused == ["algorithm.teacher_weights: 'current' -> 'ema'"]
