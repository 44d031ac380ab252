"""Weights & Biases logging through MetricsWriter, with the real wandb in offline mode:
the run is named after the workdir, logs the metrics rows, and continues after a restart;
without a project neither wandb nor datasets is imported."""

import glob
import json
import os
import subprocess
import sys

import pytest
from wandb.proto import wandb_internal_pb2

from amrsd import wandb_run
from amrsd.metrics import MetricsWriter, read_metrics


@pytest.fixture
def offline(tmp_path, monkeypatch):
  monkeypatch.setenv("WANDB_MODE", "offline")
  monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
  monkeypatch.setenv("WANDB_SILENT", "true")
  os.makedirs(tmp_path / "wandb_dir")
  return tmp_path / "wandb_dir"


def read_offline_runs(wandb_dir):
  """[(run id, run name, project, {step: {metric: value}})] of every offline run piece,
  oldest first, decoded from its .wandb file (LevelDB-style log blocks of protobuf Records)."""
  runs = []
  # In the order they were written: two pieces started within one second share the
  # timestamp that begins their folder names, so names do not order them.
  for path in sorted(glob.glob(f"{wandb_dir}/wandb/offline-run-*/run-*.wandb"),
                     key=os.path.getmtime):
    data, pos, chunks, history, run = open(path, "rb").read(), 7, [], {}, None
    while pos + 7 <= len(data):
      if 32768 - pos % 32768 < 7:  # a block's tail too short for a header is padding
        pos += 32768 - pos % 32768
        continue
      length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
      chunks.append(data[pos + 7:pos + 7 + length])
      pos += 7 + length
      if kind in (1, 4):  # a whole record, or the last piece of one
        record = wandb_internal_pb2.Record()
        record.ParseFromString(b"".join(chunks))
        chunks = []
        if record.HasField("run"):
          run = record.run
        elif record.HasField("history"):
          items = {item.key or "/".join(item.nested_key): json.loads(item.value_json)
                   for item in record.history.item}
          history[record.history.step.num] = {k: v for k, v in items.items() if k[0] != "_"}
    runs.append((run.run_id, run.display_name, run.project, history))
  return runs


def test_metrics_go_to_wandb_and_a_restart_continues_the_same_run(tmp_path, offline):
  workdir = str(tmp_path / "cpu_amrsd")
  writer = MetricsWriter(workdir, wandb_project="amrsd-tests", run_config={"seed": 3})
  writer.write(0, {"eval_accuracy": 0.5, "note": "text is not a scalar"})
  writer.write(1, {"reward_mean": 0.25, "loss": float("nan")})
  writer.write(2, {"reward_mean": 0.75})
  writer.close()
  run_id = open(os.path.join(workdir, wandb_run.RUN_ID_FILE)).read().strip()

  # Restart from the checkpoint of step 1: the same W&B run id, steps 2-3 logged again.
  writer = MetricsWriter(workdir, resume_step=1, wandb_project="amrsd-tests")
  writer.write(2, {"reward_mean": 0.75})
  writer.write(3, {"reward_mean": 1.0})
  writer.close()

  first, second = read_offline_runs(offline)
  assert first[:3] == second[:3] == (run_id, "cpu_amrsd", "amrsd-tests")
  assert first[3] == {0: {"eval_accuracy": 0.5}, 1: {"reward_mean": 0.25}, 2: {"reward_mean": 0.75}}
  assert second[3] == {2: {"reward_mean": 0.75}, 3: {"reward_mean": 1.0}}
  assert [r["step"] for r in read_metrics(os.path.join(workdir, "metrics.jsonl"))] == [0, 1, 2, 3]


def test_without_wandb_dir_the_wandb_files_stay_in_the_workdir(tmp_path, offline, monkeypatch):
  """Two runs in one process, the second without WANDB_DIR: each run's W&B files are where
  that run asked, not where the process's first run put its own."""
  MetricsWriter(str(tmp_path / "first"), wandb_project="amrsd-tests").close()
  monkeypatch.delenv("WANDB_DIR")
  workdir = tmp_path / "second"
  writer = MetricsWriter(str(workdir), wandb_project="amrsd-tests")
  writer.write(0, {"reward_mean": 0.5})
  writer.close()
  (run,) = read_offline_runs(workdir)
  assert run[1:] == ("second", "amrsd-tests", {0: {"reward_mean": 0.5}})
  assert [r[1] for r in read_offline_runs(offline)] == ["first"]


def test_without_a_project_wandb_is_not_imported(tmp_path):
  script = ("import sys, amrsd.trainer, amrsd.evaluate, amrsd.data; "
            "from amrsd.metrics import MetricsWriter; "
            f"w = MetricsWriter({str(tmp_path / 'run')!r}); w.write(1, {{'loss': 0.5}}); w.close(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('wandb', 'datasets')))")
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert result.stdout.strip() == "[]"
  assert not os.path.exists(tmp_path / "run" / wandb_run.RUN_ID_FILE)


@pytest.mark.slow
def test_a_run_on_a_dataset_by_name_logs_its_steps_to_wandb(tmp_path, offline, monkeypatch):
  """One GRPO step of SmolLM2-135M on a dataset opened by name through `datasets` (a
  local folder here), logged to W&B offline: the W&B history holds the metrics rows."""
  import datasets

  from amrsd import config as config_lib
  from amrsd.trainer import Trainer
  folder = tmp_path / "sums"
  folder.mkdir()
  for split, start in (("train", 1), ("test", 5)):
    rows = [{"question": f"What is {a} + {a + 1}?", "answer": f"#### {2 * a + 1}"}
            for a in range(start, start + 4)]
    (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_cache")
  config = config_lib.default_config()
  config.workdir = str(tmp_path / "sums_grpo")
  config.algorithm.name = "grpo"
  config.data.task, config.data.hub_name, config.data.dataset = "hub", str(folder), "gsm8k"
  config.data.verifier = "gsm8k"
  config.train.steps, config.train.trainable, config.train.top_layers = 1, "top_layers", 1
  config.rollout.prompts_per_step, config.rollout.group_size = 2, 4
  config.rollout.max_new_tokens = 6
  config.eval.size = 4
  config.log.progress, config.log.wandb_project = False, "amrsd-tests"
  trainer = Trainer(config)
  assert [r["problem"] for r in trainer.eval_records][0] == "What is 5 + 6?"
  trainer.train()
  rows = read_metrics(tmp_path / "sums_grpo" / "metrics.jsonl")
  ((_, name, project, history),) = read_offline_runs(offline)
  assert (name, project) == ("sums_grpo", "amrsd-tests") and sorted(history) == [0, 1]
  assert history[1]["reward_mean"] == rows[1]["reward_mean"]
  assert history[0]["eval_accuracy"] == rows[0]["eval_accuracy"]
