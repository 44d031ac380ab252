"""The run config: one algorithm schema, every field settable from the command line, and
bad values refused before anything loads, in one line naming the field."""

import dataclasses
import os
import subprocess
import sys

import pytest

from amrsd import config as config_lib
from amrsd.algorithms.config import RUN_OWNED, AlgorithmConfig

from tests.conftest import REPO


def _env():
  return dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO), XLA_FLAGS="")


def _train(*args):
  return subprocess.run([sys.executable, "-m", "amrsd.train", *args], env=_env(), cwd=REPO,
                        capture_output=True, text=True, timeout=180)


def test_algorithm_group_is_the_schema_and_round_trips():
  config = config_lib.default_config()
  schema = {f.name for f in dataclasses.fields(AlgorithmConfig)}
  assert set(config.algorithm) == schema - set(RUN_OWNED)
  algo = config_lib.algorithm_config(config)
  assert algo.group_size == config.rollout.group_size
  assert algo.anneal_steps == config.train.steps // 2  # -1 = half of train.steps
  assert algo.name == "amrsd" and algo.opsd_topk == config.algorithm.opsd_topk


# A legal non-default value for every algorithm field.
_NEW_VALUES = {
    "name": "sdpo", "std_norm": False, "success_threshold": 0.75, "eps_lo": 0.1,
    "eps_hi": 0.28, "loss_agg": "seq-mean-token-sum-norm", "kl_coef": 0.001, "beta0": 0.25,
    "tau_pos": 0.3, "tau_neg": 0.05, "kappa": 2.0, "anneal_steps": 7,
    "anneal_schedule": "cosine", "cig_mode": "additive", "gate": "rlsd_exp_clip",
    "sides": "pos_only", "cig_baseline": "sampler", "tis_cap": 2.0, "lam0": 0.25,
    "rlsd_anneal_steps": 30, "eps_w": 0.1, "sdpo_topk": 7, "sdpo_alpha": 0.25,
    "sdpo_is_clip": 3.0, "opsd_topk": 9, "opsd_beta": 0.25, "logit_chunk": 64,
    "teacher_forward": "stacked", "teacher_weights": "current", "ema_rate": 0.1,
}


def test_every_algorithm_field_is_settable_from_the_command_line():
  assert set(_NEW_VALUES) == set(config_lib.default_config().algorithm)
  out = _train("--show_config", *[f"--config.algorithm.{k}={v}" for k, v in _NEW_VALUES.items()])
  assert out.returncode == 0, out.stderr[-2000:]
  shown = out.stdout[out.stdout.index("algorithm:"):out.stdout.index("checkpoint:")]
  for field, value in _NEW_VALUES.items():
    text = str(value).lower() if isinstance(value, bool) else str(value)
    assert f"  {field}: {text}\n" in shown, (field, shown)


@pytest.mark.parametrize("field,value,message", [
    ("algorithm.name", "ppo", "choose one of grpo, rlsd, amrsd, sdpo, opsd"),
    ("algorithm.teacher_forward", "fused", "choose one of separate, stacked"),
    ("algorithm.opsd_topk", 0, "config.algorithm.opsd_topk=0 must be >= 1"),
    ("algorithm.logit_chunk", 0, "config.algorithm.logit_chunk=0 must be >= 1"),
    ("train.trainable", "half", "choose one of full, top_layers, lora"),
    ("rollout.group_size", 0, "must be > 0"),
    ("rollout.top_p", 0.0, r"config.rollout.top_p=0.0 must be in \(0, 1\]"),
    ("rollout.temperature", 0.0, "config.rollout.temperature=0 with amrsd: every rollout"),
    ("algorithm.kl_coef", -0.1, "config.algorithm.kl_coef=-0.1 must be >= 0"),
    ("algorithm.teacher_weights", "frozen", "choose one of default, current, ema, initial"),
    ("algorithm.ema_rate", 0.0, r"config.algorithm.ema_rate=0.0 must be in \(0, 1\]"),
    ("algorithm.rlsd_anneal_steps", 0, "config.algorithm.rlsd_anneal_steps=0 must be >= 1"),
    ("eval.max_new_tokens", 0, "must be > 0, or -1"),
    ("mesh.shape", (1, 1), "must be 3 sizes"),
    ("data.env", "chess", "config.data.env='chess' is not valid; choose one of bfcl_multi_turn"),
    ("rollout.max_turns", 0, "config.rollout.max_turns=0 must be > 0"),
    ("model.chat_template", "/no/such/template.jinja",
     "config.model.chat_template='/no/such/template.jinja' is neither a file nor a template "
     "shipped"),
])
def test_validate_names_the_field_and_the_legal_values(field, value, message):
  config = config_lib.default_config()
  section, name = field.split(".")
  config[section][name] = value
  with pytest.raises(ValueError, match=message):
    config_lib.validate(config)


def test_an_episode_turn_larger_than_the_episode_is_refused():
  config = config_lib.default_config()
  config.data.env = "bfcl_multi_turn"
  config.rollout.max_new_tokens, config.rollout.max_tokens_per_turn = 64, 128
  with pytest.raises(ValueError, match="max_tokens_per_turn=128 is more than the episode's "
                                       "budget config.rollout.max_new_tokens=64"):
    config_lib.validate(config)
  config.rollout.max_new_tokens, config.eval.max_new_tokens = 512, 64
  with pytest.raises(ValueError, match="budget config.eval.max_new_tokens=64"):
    config_lib.validate(config)
  config.eval.max_new_tokens = -1
  config.data.env, config.reflection.hint_source = "bfcl_multi_turn", "oracle"
  config.rollout.max_tokens_per_turn = 64
  with pytest.raises(ValueError, match="environments have no oracle hint writer"):
    config_lib.validate(config)


@pytest.mark.parametrize("name,value,resolved", [
    ("amrsd", "default", "current"), ("rlsd", "default", "current"), ("sdpo", "default", "ema"),
    ("opsd", "default", "initial"), ("grpo", "default", "current"), ("amrsd", "ema", "ema"),
    ("sdpo", "current", "current"), ("opsd", "ema", "ema")])
def test_teacher_weights_default_to_the_methods_own(name, value, resolved):
  from amrsd.algorithms import registry
  assert registry.teacher_weights(name, value) == resolved


def test_a_copy_nothing_reads_and_a_stacked_forward_on_other_weights_are_refused():
  config = config_lib.default_config()
  config.algorithm.name, config.algorithm.teacher_weights = "grpo", "ema"
  with pytest.raises(ValueError, match="teacher_weights='ema': grpo has no teacher; use "
                                       "default or current"):
    config_lib.validate(config)
  config.algorithm.name, config.algorithm.teacher_forward = "opsd", "stacked"
  config.algorithm.teacher_weights = "default"
  with pytest.raises(ValueError, match="opsd's teacher runs on the initial weights"):
    config_lib.validate(config)
  config.algorithm.teacher_weights = "current"
  config_lib.validate(config)


def test_group_size_one_is_legal_only_without_group_advantages():
  config = config_lib.default_config()
  config.rollout.group_size = 1
  with pytest.raises(ValueError, match="group_size=1 must be >= 2 for amrsd"):
    config_lib.validate(config)
  config.algorithm.name = "opsd"
  config.rollout.temperature = 0.0  # greedy OPSD still has a training signal
  config_lib.validate(config)


def test_saved_config_overlays_the_defaults(tmp_path):
  path = tmp_path / "run_config.json"
  path.write_text('{"algorithm": {"name": "grpo"}, "rollout": {"prompt_buckets": [64, 128]}}')
  loaded = config_lib.get_config(str(path))
  assert loaded.algorithm.name == "grpo" and loaded.rollout.prompt_buckets == (64, 128)
  assert loaded.algorithm.opsd_topk == config_lib.default_config().algorithm.opsd_topk
  path.write_text('{"algorithm": 3}')
  with pytest.raises(ValueError, match="field algorithm must be a group"):
    config_lib.get_config(str(path))


def test_show_config_prints_the_recipe_with_overrides():
  out = _train("--config=configs/cpu.py:grpo", "--config.train.steps=3", "--show_config")
  assert out.returncode == 0, out.stderr[-2000:]
  assert "name: grpo" in out.stdout and "steps: 3" in out.stdout


@pytest.mark.parametrize("flag,message", [
    ("--config.algorithm.name=ppo",
     "config.algorithm.name='ppo' is not valid; choose one of grpo, rlsd, amrsd, sdpo, opsd"),
    ("--config.rollout.temperature=0", "config.rollout.temperature=0 with amrsd"),
    ("--config.rollout.top_p=0", "config.rollout.top_p=0.0 must be in (0, 1]"),
    ("--config.algorithm.kl_coef=-0.1", "config.algorithm.kl_coef=-0.1 must be >= 0"),
    ("--config.algorithm.teacher_weights=frozen", "config.algorithm.teacher_weights='frozen' "
     "is not valid; choose one of default, current, ema, initial"),
    ("--config.train.stpes=3",
     "unknown config field --config.train.stpes; did you mean --config.train.steps?"),
])
def test_cli_refuses_a_bad_config_in_one_line_before_loading_anything(flag, message):
  out = _train(flag)
  assert out.returncode != 0
  assert message in out.stderr, out.stderr[-2000:]
  assert "Traceback" not in out.stderr
  lines = [l for l in out.stderr.splitlines() if l.startswith("amrsd.train:")]
  assert len(lines) == 1, out.stderr[-2000:]


@pytest.mark.parametrize("recipe", ["science", "tooluse", "multiturn"])
@pytest.mark.parametrize("variant", ["amrsd", "grpo", "sdpo_cpu", "amrsd_cpu"])
def test_domain_recipes_pass_validation(recipe, variant):
  import importlib.util
  from tests.conftest import REPO
  spec = importlib.util.spec_from_file_location(recipe, REPO / "configs" / f"{recipe}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(variant)
  config_lib.validate(config)
  assert config.algorithm.name == variant.split("_")[0]
  if recipe == "multiturn":
    assert config.data.env == "bfcl_multi_turn" and config.data.task.startswith("bfcl_mt:")
    assert "reflect_with_feedback" in config.prompts  # the episode's own hint prompts
