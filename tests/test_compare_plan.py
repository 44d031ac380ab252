"""amrsd.compare_plan: run names, run configs that reload exactly, recipe checks."""

import json
import re

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


def test_variants_share_the_main_seeds_and_change_only_their_fields(tmp_path):
  cfg = small_cfg(tmp_path, long_steps=0, variants=("amrsd_oracle", "amrsd_symgate",
                                                    "amrsd_noanneal", "amrsd_rawref"))
  plan_lib.validate(cfg)
  names = [s.name for s in plan_lib.plan(cfg)]
  # The variant on every seed runs beside the main runs, ablations (seed 0) after them
  # (variants in the ConfigDict's order: by name).
  assert names == ["grpo_seed0", "amrsd_seed0", "amrsd_oracle_seed0",
                   "grpo_seed1", "amrsd_seed1", "amrsd_oracle_seed1",
                   "amrsd_noanneal_seed0", "amrsd_rawref_seed0", "amrsd_symgate_seed0"]
  specs = {s.name: s for s in plan_lib.plan(cfg)}
  base = json.loads(plan_lib.run_config(cfg, specs["amrsd_seed0"]).to_json_best_effort())
  changed = {}
  for name in ("amrsd_oracle_seed0", "amrsd_symgate_seed0", "amrsd_noanneal_seed0",
               "amrsd_rawref_seed0"):
    spec = specs[name]
    assert spec.method == "amrsd" and spec.label == name[:-len("_seed0")]
    c = json.loads(plan_lib.run_config(cfg, spec).to_json_best_effort())
    changed[name] = {f"{group}.{key}": c[group][key] for group in ("algorithm", "reflection")
                     for key in c[group] if c[group][key] != base[group][key]}
    assert c["seed"] == base["seed"] and c["data"] == base["data"]
    assert c["workdir"].endswith(name)
  assert changed == {"amrsd_oracle_seed0": {"reflection.hint_source": "oracle"},
                     "amrsd_symgate_seed0": {"algorithm.tau_neg": base["algorithm"]["tau_pos"]},
                     "amrsd_noanneal_seed0": {"algorithm.anneal_schedule": "none"},
                     "amrsd_rawref_seed0": {"reflection.teacher_context": "raw_reference"}}
  assert plan_lib.labels(cfg) == ["grpo", "amrsd", "amrsd_noanneal", "amrsd_oracle",
                                  "amrsd_rawref", "amrsd_symgate"]


@pytest.mark.parametrize("field,value,message", [
    ("method", "ppo", "variants.amrsd_oracle.method='ppo'"),
    ("seeds", (0, 7), "seeds=(0, 7) must be some of config.seeds"),
    ("run", {"reflection": {"hint_sauce": "oracle"}},
     "variants.amrsd_oracle.run.reflection.hint_sauce is not a field")])
def test_validate_names_bad_variants(tmp_path, field, value, message):
  cfg = small_cfg(tmp_path, variants=("amrsd_oracle",))
  cfg.variants.amrsd_oracle[field] = value
  with pytest.raises(ValueError, match=re.escape(message)):
    plan_lib.validate(cfg)
