"""amrsd.evaluate through its CLI: known errors in one line before the model loads, and a
LoRA run evaluated from its own saved config."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


def _env():
  return dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO), XLA_FLAGS="")


def _run(module, *args, timeout=300):
  return subprocess.run([sys.executable, "-m", module, *args], env=_env(), cwd=REPO,
                        capture_output=True, text=True, timeout=timeout)


def _one_line_error(out):
  assert out.returncode != 0
  assert "Traceback" not in out.stderr, out.stderr[-2000:]
  lines = [l for l in out.stderr.splitlines() if l.startswith("amrsd.evaluate:")]
  assert len(lines) == 1, out.stderr[-2000:]
  return lines[0]


def test_nonexistent_checkpoint_is_one_line_and_creates_nothing(tmp_path):
  missing = tmp_path / "no" / "run"
  line = _one_line_error(_run("amrsd.evaluate", f"--checkpoint={missing}",
                              "--benchmarks=gsm8k"))
  assert str(missing) in line and not (tmp_path / "no").exists()


def test_unknown_benchmark_and_missing_file_are_named(tmp_path):
  line = _one_line_error(_run("amrsd.evaluate", "--benchmarks=gsm9k"))
  assert "unknown benchmark 'gsm9k'" in line
  line = _one_line_error(_run("amrsd.evaluate", f"--benchmarks={tmp_path / 'none.jsonl'}"))
  assert "none.jsonl not found" in line


def test_multiturn_episodes_are_played_and_scored(tmp_path):
  """bfcl_mt:<category>: each episode played by the policy (here the tiny random model,
  which calls nothing and fails every episode) and scored by BFCL's checker."""
  from tests.envs.conftest import save_tiny_episode_model
  folder = save_tiny_episode_model(tmp_path / "tiny")
  common = ("--benchmarks=bfcl_mt:base,bfcl_mt:miss_func", "--limit=2", "--samples=2",
            f"--config.model.path={folder}", "--max_turns=2", "--temperature=1.0")
  out = _run("amrsd.evaluate", *common, "--max_new_tokens=128", "--max_tokens_per_turn=8",
             f"--out={tmp_path / 'eval.json'}", f"--samples_out={tmp_path / 'a' / 'ans.jsonl'}")
  assert out.returncode == 0, out.stderr[-2000:]
  scores = json.loads((tmp_path / "eval.json").read_text())
  assert scores == {name: {"avg@2": 0.0, "pass@2": 0.0, "count": 2}
                    for name in ("bfcl_mt:base", "bfcl_mt:miss_func")}
  # Every episode's transcript with the checker's verdict, for each set.
  answers = [json.loads(l) for l in (tmp_path / "a" / "ans.jsonl").read_text().splitlines()]
  assert [(a["benchmark"], a["index"], a["sample"]) for a in answers] == [
      (name, i, j) for name in ("bfcl_mt:base", "bfcl_mt:miss_func") for i in (0, 1)
      for j in (0, 1)]
  assert all(a["id"].startswith(a["benchmark"].replace("bfcl_mt:", "multi_turn_"))
             for a in answers)
  assert all(a["reward"] == 0.0 and a["feedback"] and a["completion"].startswith("assistant:")
             for a in answers)
  line = _one_line_error(_run("amrsd.evaluate", *common, "--max_new_tokens=64",
                              "--max_tokens_per_turn=128"))
  assert "--max_new_tokens=64" in line


def test_samples_out_has_every_answer_with_its_verdict(tmp_path):
  """A JSONL set graded by the config's verifier: one line per (problem, sample) with the
  gold, the completion, its reward and feedback; the rewards average to eval.json's avg@k."""
  from tests.envs.conftest import save_tiny_episode_model
  folder = save_tiny_episode_model(tmp_path / "tiny")
  problems = tmp_path / "sums.jsonl"
  rows = [{"id": f"sum-{a}", "problem": f"What is {a} + 1?", "answer": str(a + 1),
           "task": "arithmetic"}
          for a in range(3)]
  problems.write_text("".join(json.dumps(r) + "\n" for r in rows))
  out = _run("amrsd.evaluate", f"--config.model.path={folder}", f"--benchmarks={problems}",
             "--samples=2", "--max_new_tokens=6", "--batch_size=2",
             f"--out={tmp_path / 'eval.json'}", f"--samples_out={tmp_path / 'ans.jsonl'}")
  assert out.returncode == 0, out.stderr[-2000:]
  assert f"wrote 6 answers to {tmp_path / 'ans.jsonl'}" in out.stdout
  assert f"{problems}: 100%" in out.stderr and "3/3 [" in out.stderr  # the progress bar
  answers = [json.loads(l) for l in (tmp_path / "ans.jsonl").read_text().splitlines()]
  assert [(a["index"], a["sample"]) for a in answers] == [(i, j) for i in range(3)
                                                          for j in range(2)]
  for a in answers:
    row = rows[a["index"]]
    assert (a["benchmark"], a["id"], a["problem"], a["gold"]) == (
        str(problems), row["id"], row["problem"], row["answer"])
    assert isinstance(a["completion"], str) and a["feedback"] and a["reward"] in (0.0, 1.0)
  score = json.loads((tmp_path / "eval.json").read_text())[str(problems)]
  assert score["avg@2"] == sum(a["reward"] for a in answers) / 6


@pytest.mark.slow
def test_lora_run_is_evaluated_from_its_saved_config(tmp_path):
  """Trained with LoRA, evaluated without repeating any run flag: the saved config brings
  the adapters (their restore would fail otherwise), the verifier and the template."""
  run = tmp_path / "lora"
  out = _run("amrsd.train", f"--config.workdir={run}", "--config.algorithm.name=grpo",
             "--config.train.steps=1", "--config.train.trainable=lora",
             "--config.train.lora_rank=2", "--config.rollout.prompts_per_step=2",
             "--config.rollout.group_size=2", "--config.rollout.max_new_tokens=4",
             "--config.eval.size=2", "--config.log.progress=False", timeout=900)
  assert out.returncode == 0, out.stderr[-3000:]
  problems = tmp_path / "sums.jsonl"
  problems.write_text("".join(json.dumps({"problem": f"What is {a} + 1?", "answer": str(a + 1),
                                          "task": "arithmetic"}) + "\n" for a in range(3)))
  result = tmp_path / "eval.json"
  out = _run("amrsd.evaluate", f"--checkpoint={run}", f"--benchmarks={problems}",
             "--temperature=0", "--max_new_tokens=4", f"--out={result}", timeout=900)
  assert out.returncode == 0, out.stderr[-3000:]
  scores = json.loads(result.read_text())[str(problems)]
  assert scores["count"] == 3 and 0.0 <= scores["avg@1"] <= 1.0
