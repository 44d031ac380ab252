"""amrsd.compare_report: the report generator on metrics/score files written here."""

import json
import os

from amrsd import compare_report as report
from amrsd.compare_plan import BASE, SCORES
from amrsd.compare_stats import wilson

from tests.fixtures.comparison import small_cfg, write_run


def test_report_on_synthetic_runs(tmp_path):
  cfg = small_cfg(tmp_path)
  g0, g1 = [1, 0, 1, 1, 0, 1, 0, 1], [1, 1, 1, 0, 0, 1, 0, 1]   # grpo seeds: 5/8 each
  a0, a1 = [1, 1, 1, 1, 0, 1, 0, 1], [1, 1, 1, 1, 1, 1, 0, 1]   # amrsd: 6/8, 7/8
  sampled = [[1, 0]] * 8
  write_run(tmp_path, "grpo_seed0", 4, [0.1, 0.2, 0.3, 0.4], {4: 0.5}, g0, sampled)
  write_run(tmp_path, "grpo_seed1", 4, [0.1, 0.3, 0.3, 0.5], {4: 0.6}, g1, sampled)
  write_run(tmp_path, "amrsd_seed0", 4, [0.2, 0.3, 0.4, 0.5], {4: 0.7}, a0, sampled,
            extra={"gate_fraction": 0.3, "cig_mean_pos": 0.2, "hint_leak_rate": 0.1})
  write_run(tmp_path, "amrsd_seed1", 4, [0.2, 0.4, 0.4, 0.6], {4: 0.7}, a1, sampled,
            extra={"gate_fraction": 0.5, "cig_mean_pos": 0.4, "hint_leak_rate": 0.3})
  # Long runs: grpo holds its level, amrsd peaks at step 4 and ends 0.3 lower.
  write_run(tmp_path, "grpo_seed0_long", 8, [0.4] * 8, {4: 0.5, 8: 0.5})
  write_run(tmp_path, "amrsd_seed0_long", 8, [0.5] * 8, {4: 0.7, 8: 0.4})
  os.makedirs(tmp_path / BASE)
  (tmp_path / BASE / SCORES).write_text(json.dumps({"step": 0, "sets": {
      "heldout": {"problems": 8, "greedy": [1, 0] * 4, "sampled": [[0, 0]] * 8}}}))
  path = report.write_report(cfg, header="Command: test")
  text = open(path).read()
  assert "Runs finished: 6 of 6." in text and "Command: test" in text
  # greedy means: grpo 10/16 = 0.625, amrsd 13/16 = 0.8125 (hand counts above)
  grpo_line = next(line for line in text.splitlines() if line.startswith("| grpo |"))
  amrsd_line = next(line for line in text.splitlines() if line.startswith("| amrsd |"))
  assert "| 0.625 [" in grpo_line and "0.625, 0.625" in grpo_line
  assert "| 0.812 [" in amrsd_line and "0.750, 0.875" in amrsd_line
  assert "| base model | - | 0.500 | - |" in text
  lo, hi = wilson(10, 16)
  assert f"[{lo:.3f}, {hi:.3f}]" in grpo_line
  assert "| amrsd - grpo | 2 | 0.188 [" in text
  assert "**Result (heldout):** AMR-SD has the highest mean greedy accuracy (0.812)" in text
  assert "AMR-SD - GRPO = +0.188 [" in text
  long_lines = {line.split(" |")[0][2:]: line for line in text.splitlines()
                if "_long |" in line}
  assert "| 0.700 (4) | 0.400 | 0.300 | yes |" in long_lines["amrsd_seed0_long"]
  assert "| 0.500 (4) | 0.500 | 0.000 | no |" in long_lines["grpo_seed0_long"]
  assert "| gate_fraction | 0.400 -> 0.400 |" in text   # seed means over the two halves
  table = []
  for line in text.splitlines() + [""]:
    if line.startswith("|"):
      table.append(line.count("|"))
    elif table:
      assert len(set(table)) == 1, f"a table's rows have different column counts: {table}"
      table = []
  figures = sorted(os.listdir(tmp_path / "figures"))
  assert figures == ["amrsd_signals.png", "final_accuracy_heldout.png", "hints.png",
                     "learning_curves.png", "long_horizon.png", "response_length.png",
                     "wall_time.png"]
  for name in figures:
    data = (tmp_path / "figures" / name).read_bytes()
    assert data[:4] == b"\x89PNG" and len(data) < 200_000


def test_report_shows_the_variants_beside_grpo_and_amrsd(tmp_path):
  cfg = small_cfg(tmp_path, long_steps=0, variants=("amrsd_oracle",))
  g0, g1 = [1, 0, 1, 1, 0, 1, 0, 1], [1, 1, 1, 0, 0, 1, 0, 1]   # grpo: 5/8 each
  a0, a1 = [1, 0, 1, 1, 0, 1, 0, 1], [1, 1, 1, 0, 0, 1, 1, 1]   # amrsd: 5/8, 6/8
  o0, o1 = [1, 1, 1, 1, 0, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1]   # oracle: 7/8, 8/8
  sampled = [[1, 0]] * 8
  write_run(tmp_path, "grpo_seed0", 4, [0.1, 0.2, 0.3, 0.4], {4: 0.5}, g0, sampled)
  write_run(tmp_path, "grpo_seed1", 4, [0.1, 0.3, 0.3, 0.5], {4: 0.6}, g1, sampled)
  for seed, (a, o) in enumerate([(a0, o0), (a1, o1)]):
    write_run(tmp_path, f"amrsd_seed{seed}", 4, [0.2, 0.3, 0.4, 0.5], {4: 0.6}, a, sampled,
              extra={"gate_fraction": 0.1, "cig_mean_neg": -0.2})
    write_run(tmp_path, f"amrsd_oracle_seed{seed}", 4, [0.3, 0.7, 0.8, 0.9], {4: 0.8}, o,
              sampled, extra={"gate_fraction": 0.4, "cig_mean_neg": -0.6})
  text = open(report.write_report(cfg)).read()
  assert "Runs finished: 6 of 6." in text
  assert ("- variant amrsd_oracle: amrsd with reflection.hint_source='oracle' on seeds (0, 1)"
          in text)
  # Paired over the same seeds: oracle - amrsd = (2/8 + 2/8) / 2 = 0.25; - grpo = 0.3125.
  assert "| amrsd_oracle - amrsd | 2 | 0.250 [" in text
  assert "| amrsd_oracle - grpo | 2 | 0.312 [" in text
  assert "**Variant (heldout):** amrsd_oracle - amrsd = +0.250 [" in text
  # The verdict is between methods: the variant is not a competitor.
  assert "**Result (heldout):** AMR-SD has the highest mean greedy accuracy (0.688)" in text
  assert "| metric | amrsd | amrsd_oracle |" in text
  assert "| gate_fraction | 0.100 -> 0.100 | 0.400 -> 0.400 |" in text
  assert "| cig_mean_neg | -0.200 -> -0.200 | -0.600 -> -0.600 |" in text
  # Reward 0.5 (trailing mean of 4): oracle at step 2 (0.5), amrsd never (0.35 at step 4).
  assert "| amrsd_oracle | 2 of 2 | 2, 2 | 2.0 |" in text
  assert "| amrsd | 0 of 2 | -, - | - |" in text
  assert (tmp_path / "figures" / "variant_curves.png").exists()


def test_report_verdict_on_a_tie_and_a_loss(tmp_path):
  cfg = small_cfg(tmp_path, methods=("grpo", "rlsd", "amrsd"), seeds=(0,), long_steps=0)
  same = [1, 0, 1, 1]
  write_run(tmp_path, "grpo_seed0", 4, [0.1] * 4, {4: 0.5}, same, [[1]] * 4)
  write_run(tmp_path, "rlsd_seed0", 4, [0.1] * 4, {4: 0.5}, [0, 0, 1, 0], [[1]] * 4)
  write_run(tmp_path, "amrsd_seed0", 4, [0.1] * 4, {4: 0.5}, same, [[0]] * 4)
  text = open(report.write_report(cfg)).read()
  assert "AMR-SD ties with grpo for the highest mean greedy accuracy (0.750)" in text
  (tmp_path / "grpo_seed0" / SCORES).write_text(json.dumps({"step": 4, "sets": {
      "heldout": {"problems": 4, "greedy": [1, 1, 1, 1], "sampled": [[1]] * 4}}}))
  text = open(report.write_report(cfg)).read()
  assert "AMR-SD does not win: grpo has the highest mean greedy accuracy (1.000 vs 0.750)" in text


def test_report_on_partial_results(tmp_path):
  cfg = small_cfg(tmp_path)
  write_run(tmp_path, "grpo_seed0", 4, [0.1, 0.2, 0.3, 0.4], {4: 0.5})
  os.makedirs(tmp_path / "amrsd_seed0")
  with open(tmp_path / "amrsd_seed0" / "metrics.jsonl", "w") as f:
    f.write(json.dumps({"step": 0, "eval_accuracy": 0.3}) + "\n")
    f.write(json.dumps({"step": 1, "reward_mean": 0.2}) + "\n")
  text = open(report.write_report(cfg)).read()
  assert "Runs finished: 1 of 6." in text
  assert "amrsd_seed0, grpo_seed1" in text
  assert "No run has been scored yet" in text and "No long-horizon run has finished" in text
  assert (tmp_path / "figures" / "learning_curves.png").exists()
