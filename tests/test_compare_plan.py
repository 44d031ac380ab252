"""amrsd.compare_plan: run names, run configs that reload exactly, recipe checks."""

import json

import pytest

from amrsd import compare_plan as plan_lib
from amrsd import config as config_lib

from tests.fixtures.comparison import load_recipe, small_cfg


def test_plan_and_run_config_round_trip(tmp_path):
  cfg = small_cfg(tmp_path)
  names = [s.name for s in plan_lib.plan(cfg)]
  assert names == ["grpo_seed0", "amrsd_seed0", "grpo_seed1", "amrsd_seed1",
                   "grpo_seed0_long", "amrsd_seed0_long"]
  long = plan_lib.plan(cfg)[-1]
  c = plan_lib.run_config(cfg, long)
  assert (c.algorithm.name, c.seed, c.train.steps) == ("amrsd", 0, 8)
  # Pinned to the main runs' horizon, so the long run continues them exactly.
  assert c.algorithm.anneal_steps == 2
  path = tmp_path / "run.json"
  path.write_text(c.to_json_best_effort())
  loaded = config_lib.get_config(str(path))
  config_lib.validate(loaded)
  assert json.loads(loaded.to_json_best_effort()) == json.loads(c.to_json_best_effort())
  assert loaded.data.task_args.levels == (1, 2, 3)
  # A file written before a field existed gets the field's default.
  saved = json.loads(c.to_json_best_effort())
  del saved["train"]["warmup_steps"]
  path.write_text(json.dumps(saved))
  loaded = config_lib.get_config(str(path))
  assert loaded.train.warmup_steps == 0 and loaded.seed == 0 and loaded.train.steps == 8
  path.write_text(json.dumps({"train": 3}))
  with pytest.raises(ValueError, match="field train must be a group"):
    config_lib.get_config(str(path))


def test_validate_names_bad_fields(tmp_path):
  cfg = small_cfg(tmp_path)
  cfg.methods = ("grpo", "ppo")
  with pytest.raises(ValueError, match="config.methods"):
    plan_lib.validate(cfg)
  cfg = small_cfg(tmp_path)
  cfg.long_seeds = (5,)
  with pytest.raises(ValueError, match="long_seeds"):
    plan_lib.validate(cfg)
  with pytest.raises(ValueError, match="quick"):
    load_recipe("compare_cpu", "fast")


def test_paper_recipe_is_complete():
  cfg = load_recipe("compare_paper")
  plan_lib.validate(cfg)
  c = plan_lib.run_config(cfg, plan_lib.plan(cfg)[0])
  assert c.model.dtype == "bfloat16" and c.rollout.max_new_tokens == 8192
  assert set(cfg.final_eval.benchmarks) == {"aime24", "aime25", "amc23", "hmmt25_feb"}
  # Every set comes from the package, with no data folder beside the checkout.
  from amrsd import compare, data
  sets = compare.eval_sets(cfg, c)
  assert {name: len(records) for name, (records, _, _) in sets.items()} == {
      "aime24": 30, "aime25": 30, "amc23": 40, "hmmt25_feb": 30}
  assert len(data.open_dataset(c.data.eval_path)) == 30  # the recipe's held-out set: aime24
