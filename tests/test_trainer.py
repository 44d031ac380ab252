"""The trainer: setup errors, a real run end to end, and exact resume after SIGKILL."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from amrsd import buckets, config as config_lib
from amrsd.metrics import read_metrics

from tests.conftest import REPO


def _train_cmd(workdir, *extra):
  return [sys.executable, "-m", "amrsd.train", f"--config.workdir={workdir}",
          "--config.algorithm.name=grpo", "--config.train.steps=3",
          "--config.train.trainable=top_layers", "--config.train.top_layers=1",
          "--config.train.learning_rate=1e-4", "--config.rollout.prompts_per_step=2",
          "--config.rollout.group_size=4", "--config.rollout.max_new_tokens=6",
          "--config.eval.size=4", "--config.checkpoint.every_steps=1",
          "--config.log.plot_every_steps=1", "--config.log.progress=False", *extra]


def _env():
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
  env["XLA_FLAGS"] = ""  # one CPU device, like a user's run
  return env


def _comparable(rows):
  """Metrics that must match between runs: everything but wall times and speeds."""
  return [{k: v for k, v in r.items() if not k.startswith(("time_", "tokens_per_second"))
           and k != "step_seconds"} for r in rows]


def _start_and_signal(workdir, ready, signum):
  """Starts a run, sends signum once ready() holds; returns (exit code, stderr)."""
  log = workdir.parent / f"{workdir.name}.{signum}.log"
  with open(log, "w") as err:  # a file, not a pipe: a full pipe would stall the run
    proc = subprocess.Popen(_train_cmd(workdir), env=_env(), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.time() + 600
    try:
      while not ready():
        assert proc.poll() is None, "the run ended before the signal: " + log.read_text()[-2000:]
        assert time.time() < deadline
        time.sleep(0.2)
    finally:
      proc.send_signal(signum)
      proc.wait(timeout=300)
  return proc.returncode, log.read_text()


@pytest.mark.slow
def test_sigkill_and_sigterm_then_resume_give_the_uninterrupted_metrics(tmp_path):
  straight = tmp_path / "straight"
  subprocess.run(_train_cmd(straight), env=_env(), cwd=REPO, check=True, timeout=600,
                 capture_output=True)
  reference = read_metrics(straight / "metrics.jsonl")
  assert [r["step"] for r in reference] == [0, 1, 2, 3]
  assert os.path.exists(straight / "final_eval.json")
  assert os.listdir(straight / "plots") and os.listdir(straight / "tensorboard")

  # SIGKILL right after the first checkpoint appears (mid-step 2) ...
  killed = tmp_path / "killed"
  _start_and_signal(killed, lambda: (killed / "checkpoints" / "1").is_dir(), signal.SIGKILL)
  # ... then SIGTERM in the resumed run once step 2's metrics are written: it saves and exits.
  def step_2_logged():
    return any(r["step"] == 2 for r in read_metrics(killed / "metrics.jsonl"))
  code, err = _start_and_signal(killed, step_2_logged, signal.SIGTERM)
  assert code != 0 and "SIGTERM: saved step" in err, err[-2000:]
  assert (killed / "checkpoints" / "2").is_dir()
  done = subprocess.run(_train_cmd(killed), env=_env(), cwd=REPO, timeout=600,
                        capture_output=True, text=True)
  assert done.returncode == 0, done.stderr[-3000:]
  resumed = read_metrics(killed / "metrics.jsonl")
  assert [r["step"] for r in resumed] == [0, 1, 2, 3]
  assert _comparable(resumed) == _comparable(reference)
  assert json.load(open(killed / "final_eval.json")) == json.load(open(straight / "final_eval.json"))


def _config(tmp_path, **fields):
  config = config_lib.default_config()
  config.workdir = str(tmp_path / "run")
  for dotted, value in fields.items():
    section, name = dotted.split("__")
    config[section][name] = value
  return config


def test_missing_model_path_is_named(tmp_path):
  from amrsd.trainer import Trainer
  with pytest.raises(FileNotFoundError, match="model path '/no/such/model' does not exist"):
    Trainer(_config(tmp_path, model__path="/no/such/model"))


def test_malformed_dataset_row_names_file_line_and_field(tmp_path):
  from amrsd.trainer import Trainer
  good = tmp_path / "eval.jsonl"
  good.write_text(json.dumps({"problem": "1+1", "answer": "2"}) + "\n")
  bad = tmp_path / "train.jsonl"
  bad.write_text(json.dumps({"problem": "1+1", "answer": "2"}) + "\n" +
                 json.dumps({"problem": "2+2"}) + "\n")
  config = _config(tmp_path, data__task="jsonl", data__train_path=str(bad),
                   data__eval_path=str(good), data__dataset="math", data__verifier="math")
  with pytest.raises(ValueError, match=r"train\.jsonl:2.*answer"):
    Trainer(config)


def test_unreadable_dataset_is_named(tmp_path):
  from amrsd.trainer import Trainer
  config = _config(tmp_path, data__task="jsonl", data__train_path=str(tmp_path / "none.jsonl"),
                   data__eval_path=str(tmp_path / "none.jsonl"))
  with pytest.raises((OSError, ValueError), match="none.jsonl"):
    Trainer(config)


def test_workdir_that_cannot_be_created_is_named(tmp_path):
  from amrsd.trainer import Trainer
  blocker = tmp_path / "file"
  blocker.write_text("not a folder")
  config = config_lib.default_config()
  config.workdir = str(blocker / "run")
  with pytest.raises(OSError, match="cannot create workdir"):
    Trainer(config)


_DISK_FULL = r"""
import resource, signal, sys
import jax.numpy as jnp
from amrsd.checkpointing import Checkpointer, abstract_like
ckpt = Checkpointer(sys.argv[1], keep=3)
small = {"w": jnp.ones((4,), jnp.float32)}
ckpt.save(1, small, {"step": 1})
ckpt.wait()
# Simulate a full disk: writes past 64 KiB fail with EFBIG instead of killing us.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, resource.RLIM_INFINITY))
try:
  import jax  # random values: orbax compresses, and zeros would fit in 64 KiB
  ckpt.save(2, {"w": jax.random.normal(jax.random.key(0), (1 << 20,))}, {"step": 2})
  ckpt.wait()
  print("SAVED")
except Exception as e:
  print("FAILED", type(e).__name__)
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
fresh = Checkpointer(sys.argv[1], keep=3)
state, meta = fresh.restore(fresh.latest_step(), abstract_like(small))
print("LATEST", fresh.latest_step(), meta["step"], float(state["w"].sum()))
"""


def test_disk_full_during_save_keeps_the_previous_checkpoint(tmp_path):
  out = subprocess.run([sys.executable, "-c", _DISK_FULL, str(tmp_path)], env=_env(), cwd=REPO,
                       capture_output=True, text=True, timeout=300)
  assert "FAILED" in out.stdout, out.stdout + out.stderr[-2000:]
  assert "LATEST 1 1 4.0" in out.stdout, out.stdout + out.stderr[-2000:]


def _small_run(tmp_path, method, steps=1):
  """SmolLM2-135M, top block trained, 2 prompts x 4 samples of 6 tokens."""
  config = config_lib.default_config()
  config.workdir = str(tmp_path / method)
  config.algorithm.name = method
  config.train.steps = steps
  config.train.trainable = "top_layers"
  config.train.top_layers = 1
  config.rollout.prompts_per_step = 2
  config.rollout.group_size = 4
  config.rollout.max_new_tokens = 6
  config.reflection.hint_max_tokens = 12
  config.reflection.hint_granularity = "rollout"
  config.eval.size = 4
  config.log.progress = False
  return config


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


@pytest.mark.slow
@pytest.mark.parametrize("method,kl_coef", [("sdpo", 0.0), ("opsd", 0.05)])
def test_teacher_copies_restore_exactly_and_the_resumed_step_repeats(tmp_path, method, kl_coef):
  """SDPO's EMA teacher, OPSD's initial teacher (shared with the KL reference): saved
  with step 1, wiped in memory, restored bit for bit; step 2 then repeats exactly."""
  from amrsd.trainer import Trainer
  config = _small_run(tmp_path, method, steps=2)
  config.algorithm.kl_coef = kl_coef
  config.train.learning_rate = 1e-4
  trainer = Trainer(config)
  assert list(trainer.copies.arrays) == [{"sdpo": "ema", "opsd": "initial"}[method]]
  initial = _leaves(trainer.copies.arrays)
  try:
    with jax.set_mesh(trainer.mesh):
      trainer.run_step()
      trainer.save()
      trainer.checkpointer.wait()
      saved = _leaves(trainer.copies.arrays)
      straight = trainer.run_step()
      after = _leaves(trainer.copies.arrays)
      trainer.copies.arrays = jax.tree.map(jnp.zeros_like, trainer.copies.arrays)
      assert trainer.restore_latest() and trainer.step == 1
      assert all(np.array_equal(a, b) for a, b in zip(_leaves(trainer.copies.arrays), saved,
                                                       strict=True))
      resumed = trainer.run_step()
  finally:
    trainer.close()
  assert _comparable([resumed]) == _comparable([straight])
  assert all(np.array_equal(a, b) for a, b in zip(_leaves(trainer.copies.arrays), after))
  moved = [not np.array_equal(a, b) for a, b in zip(saved, initial)]
  assert any(moved) if method == "sdpo" else not any(moved)  # the EMA moves, the initial not
  assert (straight["kl"] > 0) == (kl_coef > 0)


def _spy_on_train_step(trainer):
  """Records (params before the update, batch, step) of each train step the trainer runs."""
  seen, step_fn = [], trainer.train_step

  def spy(params, opt_state, batch, step, teacher_state):
    seen.append((jax.tree.map(jnp.copy, params), batch, step))
    return step_fn(params, opt_state, batch, step, teacher_state)

  trainer.train_step = spy
  return seen


@pytest.mark.slow
def test_kl_to_the_initial_weights_and_the_annealing_step_through_the_trainer(tmp_path):
  """A real RLSD step with kl_coef > 0: the loss is the one without KL plus kl_coef times
  the k3 KL, computed here in numpy from the step's own weights and the initial ones; at
  trainer step 3 of RLSD's 4-step horizon the strength is lam0 (1 - 3/4)."""
  from amrsd.algorithms.logprobs import token_logprobs
  from amrsd.algorithms.step import make_grad_fn
  from amrsd.trainer import Trainer
  config = _small_run(tmp_path, "rlsd", steps=8)
  config.algorithm.kl_coef = 0.5
  config.algorithm.rlsd_anneal_steps = 4
  trainer = Trainer(config)
  trainer.step = 3  # as if resumed there
  initial = jax.tree.map(jnp.copy, trainer.params)
  # The trained part starts away from the initial weights, so this first step's KL is > 0
  # (the frozen part is shared by the policy and the reference).
  moved, frozen = nnx.split_state(trainer.params, trainer.trainable, ...)
  moved = jax.tree.map(lambda p: p + 2e-3 * jnp.cos(1e3 * p), moved)
  trainer.params = nnx.merge_state(moved, frozen)
  seen = _spy_on_train_step(trainer)
  try:
    with jax.set_mesh(trainer.mesh):
      metrics = trainer.run_step()
      params, batch, step = seen[0]
      ids, mask = batch["student_ids"], np.asarray(batch["response_mask"], np.float64)
      start = ids.shape[1] - mask.shape[1]
      student, _ = token_logprobs((trainer.graphdef, params), ids, batch["student_mask"], start)
      ref, _ = token_logprobs((trainer.graphdef, initial), ids, batch["student_mask"], start)
      no_kl = dataclasses.replace(trainer.algo, kl_coef=0.0)
      _, without = make_grad_fn(trainer.graphdef, no_kl, trainable=trainer.trainable)(
          params, batch, step)
  finally:
    trainer.close()
  d = np.asarray(ref, np.float64) - np.asarray(student, np.float64)
  k3 = ((np.exp(d) - d - 1) * mask).sum() / mask.sum()  # token-mean, docs/algorithms.md 1
  assert int(step) == 3 and metrics["anneal_strength"] == pytest.approx(0.5 * (1 - 3 / 4))
  assert k3 > 1e-4
  assert metrics["kl"] == pytest.approx(k3, rel=1e-3)
  assert metrics["loss"] - float(without["loss"]) == pytest.approx(0.5 * k3, rel=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["amrsd", "sdpo"])
def test_a_step_with_a_teacher_runs_on_the_real_model(tmp_path, method):
  """Rollouts, verification, reflection (hints written by the model itself), teacher
  contexts, the update and the evaluation, end to end on SmolLM2-135M."""
  from amrsd.trainer import Trainer
  config = _small_run(tmp_path, method)
  config.log.samples_groups = 2  # every group of the step
  final = Trainer(config).train()
  assert final["step"] == 1 and 0.0 <= final["eval_accuracy"] <= 1.0
  row = [r for r in read_metrics(tmp_path / method / "metrics.jsonl") if r["step"] == 1][0]
  assert np.isfinite(row["loss"]) and row["teacher_token_mismatch"] == 0.0
  samples = read_metrics(tmp_path / method / "samples.jsonl")
  rollouts = [r for group in samples for r in group["rollouts"]]
  assert [g["group"] for g in samples] == [0, 1] and len(rollouts) == 8
  assert sum(r["reward"] for r in rollouts) / 8 == pytest.approx(row["reward_mean"])
  if method == "amrsd":
    assert row["hints_made"] + row["hints_empty"] == 8
    assert sum(r["hint"] is not None for r in rollouts) == row["hints_made"]
    # Zero-variance groups ask for no hint (it could not change the loss); others do.
    assert row["hints_skipped"] == 8 or row["hint_requests"] > 0
    assert (row["hint_length_mean"] > 0) == (row["hints_made"] > 0)
    # The teacher runs on the hinted rows only (hints go to groups with signal alone).
    assert row["teacher_rows_needed"] == row["hints_made"]
  # Its slots: the needed rows rounded up to a ladder size, 0 without any.
  needed = int(row["teacher_rows_needed"])
  assert row["teacher_rows"] == (0 if needed == 0 else buckets.fit(needed))
  assert row["time_teacher"] >= 0 and row["time_update"] > 0
  assert 0.0 <= row["hint_fraction"] <= 1.0


@pytest.mark.slow
def test_an_annealed_amrsd_step_writes_no_hint_and_runs_no_teacher(tmp_path):
  """From K_anneal on AMR-SD is GRPO (docs/algorithms.md 3.2): no reflection, no
  teacher forward, and the update is GRPO's on the same rollouts."""
  from amrsd.algorithms.config import AlgorithmConfig
  from amrsd.algorithms.step import make_grad_fn
  from amrsd.trainer import Trainer
  config = _small_run(tmp_path, "amrsd", steps=4)
  config.algorithm.anneal_steps = 2
  trainer = Trainer(config)
  trainer.step = 2
  seen = _spy_on_train_step(trainer)
  try:
    with jax.set_mesh(trainer.mesh):
      metrics = trainer.run_step()
      params, batch, step = seen[0]
      grpo = AlgorithmConfig(name="grpo", group_size=4)
      student = {k: batch[k] for k in ("student_ids", "student_mask", "response_mask",
                                       "logp_old", "rewards")}
      _, as_grpo = make_grad_fn(trainer.graphdef, grpo, trainable=trainer.trainable)(
          params, student, step)
  finally:
    trainer.close()
  assert metrics["anneal_strength"] == 0.0 and metrics["hint_requests"] == 0
  assert metrics["hints_skipped"] == metrics["hints_empty"] == 8 and metrics["teacher_rows"] == 0
  assert "teacher_ids" not in batch and not np.asarray(batch["teacher_rows"]).any()
  assert metrics["loss"] == pytest.approx(float(as_grpo["loss"]), rel=1e-6, abs=1e-9)


def _episode_run(tmp_path, method):
  """The tiny random model (tests.envs.conftest.save_tiny_episode_model) on real BFCL
  multi-turn episodes: 2 episodes x 2 rollouts of 2 assistant messages of at most 8 tokens."""
  from tests.envs.conftest import save_tiny_episode_model
  folder = save_tiny_episode_model(tmp_path / "tiny_model")
  config = config_lib.default_config()
  config.workdir = str(tmp_path / method)
  config.model.path = str(folder)
  config.algorithm.name = method
  config.data.env, config.data.task, config.data.task_args = "bfcl_multi_turn", "bfcl_mt:base", {}
  config.data.max_prompt_tokens = 1024
  config.prompts.task = "{problem}"
  config.rollout.prompt_buckets = (128, 256, 512, 1024)
  config.rollout.prompts_per_step, config.rollout.group_size = 2, 2
  config.rollout.max_turns, config.rollout.max_tokens_per_turn = 2, 8
  config.rollout.max_new_tokens = 128
  config.reflection.hint_max_tokens = 16
  config.eval.size = 2
  config.log.progress = False
  return config


@pytest.mark.parametrize("method", ["amrsd", "rlsd"])
def test_a_multiturn_step_trains_on_the_policy_tokens_of_whole_episodes(tmp_path, method):
  """data.env: rollouts are played episodes (one session, observations in the rows); the
  update's loss mask is the policy mask; the teacher (AMR-SD: the model's hint on the
  transcript and the checker's feedback; RLSD: the gold calls) re-scores the same tokens."""
  from amrsd.sampling.session import Trajectories
  from amrsd.trainer import Trainer
  trainer = Trainer(_episode_run(tmp_path, method))
  seen = _spy_on_train_step(trainer)
  try:
    with jax.set_mesh(trainer.mesh):
      rollouts = trainer.rollouts()
      t = rollouts.result
      assert isinstance(t, Trajectories) and len(rollouts.reward) == 4
      # The tiny model writes no calls: each message ends a user turn, 2 end the episode.
      assert rollouts.metrics["turns_mean"] == 2 and rollouts.metrics["tool_calls_mean"] == 0
      assert 0 < rollouts.metrics["policy_token_fraction"] < 1
      assert all(text.startswith("assistant: ") and "\nuser: " in text
                 for text in rollouts.texts)
      assert all("turn" in feedback for feedback in rollouts.feedback)
      # One episode of the first group passes (the tiny model cannot): a group with signal.
      rollouts.reward[0], rollouts.feedback[0] = 1.0, ""
      metrics = trainer.learn(rollouts)
      evaluation = trainer.evaluate()
  finally:
    trainer.close()
  _, batch, _ = seen[0]
  L = t.completion_mask.shape[1]
  np.testing.assert_array_equal(np.asarray(batch["response_mask"]), t.policy_mask)
  np.testing.assert_array_equal(np.asarray(batch["student_mask"])[:, -L:], t.completion_mask)
  assert (t.completion_mask > t.policy_mask).any()  # observations: context, not loss
  # The group with signal: its 2 rows get a teacher (AMR-SD: one group hint for both).
  assert metrics["teacher_rows_needed"] == 2 and metrics["teacher_token_mismatch"] == 0.0
  if method == "amrsd":
    assert metrics["hint_requests"] >= 1 and metrics["hints_made"] == 2
    assert metrics["cig_mean_pos"] != 0.0  # the hinted teacher scores the episode otherwise
  # samples.jsonl's row of the step: the first group's episodes, verdicts and hint.
  group, = trainer.last_samples
  assert group["problem"] == rollouts.records[0]["problem"]
  assert [r["completion"] for r in group["rollouts"]] == rollouts.texts[:2]
  assert [r["reward"] for r in group["rollouts"]] == [1.0, float(rollouts.reward[1])]
  hints = [r["hint"] for r in group["rollouts"]]
  if method == "amrsd":  # one group hint for both episodes
    assert hints[0] and hints[0] == hints[1]
  else:
    assert hints == [None, None]
  assert np.isfinite(metrics["loss"]) and metrics["grad_norm"] > 0
  for name in ("turns_mean", "tool_calls_mean", "env_errors", "policy_token_fraction"):
    assert name in metrics
  assert set(evaluation) == {"eval_accuracy", "eval_accuracy_sampled"}
  assert evaluation["eval_accuracy"] == 0.0


def test_a_non_finite_loss_stops_the_step_and_applies_nothing(tmp_path):
  """A NaN reward (a broken verifier) makes the loss NaN: the step raises TrainingError
  naming the step, and the model keeps the weights it had."""
  from amrsd.trainer import Trainer, TrainingError
  trainer = Trainer(_episode_run(tmp_path, "grpo"))
  try:
    with jax.set_mesh(trainer.mesh):
      before = _leaves(nnx.state(trainer.model, nnx.Param))
      rollouts = trainer.rollouts()
      rollouts.reward[0] = np.nan
      with pytest.raises(TrainingError, match=r"step 0: non-finite loss or gradients .*"
                                              r"the update was not applied"):
        trainer.learn(rollouts)
      after = _leaves(nnx.state(trainer.model, nnx.Param))
  finally:
    trainer.close()
  assert all(np.array_equal(a, b) for a, b in zip(before, after))


def test_a_stacked_teacher_forward_trains_like_the_teacher_program(tmp_path):
  """algorithm.teacher_forward=stacked: the update runs the teacher rows itself (no teacher
  program) and gives the loss and CIG statistics of the default on the same rollouts."""
  from amrsd.trainer import Trainer
  runs = {}
  for forward in ("separate", "stacked"):
    config = _episode_run(tmp_path / forward, "amrsd")
    config.algorithm.teacher_forward = forward
    trainer = Trainer(config)
    try:
      with jax.set_mesh(trainer.mesh):
        rollouts = trainer.rollouts()
        rollouts.reward[0], rollouts.feedback[0] = 1.0, ""  # a group with signal
        runs[forward] = trainer.learn(rollouts)
    finally:
      trainer.close()
  separate, stacked = runs["separate"], runs["stacked"]
  assert "time_teacher" in separate and "time_teacher" not in stacked
  assert separate["teacher_rows"] == 2 and stacked["teacher_rows"] == 4
  assert separate["teacher_rows_needed"] == stacked["teacher_rows_needed"] == 2
  assert separate["hints_made"] == stacked["hints_made"] == 2
  for name in ("loss", "cig_mean_pos", "cig_mean_neg", "gate_fraction", "grad_norm"):
    assert stacked[name] == pytest.approx(separate[name], rel=1e-4, abs=1e-6), name
  assert separate["cig_mean_pos"] != 0.0


def test_episodes_and_prompts_must_match_data_env(tmp_path):
  """Both mismatches are named before the model loads (its path does not exist here)."""
  from amrsd.trainer import Trainer
  config = _episode_run(tmp_path, "grpo")
  config.model.path = str(tmp_path / "no_model")
  config.data.task = "arithmetic"
  with pytest.raises(ValueError, match=r"data.env='bfcl_multi_turn'.*gives single prompts"):
    Trainer(config)
  config.data.task, config.data.env = "bfcl_mt:base", ""
  with pytest.raises(ValueError, match=r"set config.data.env='bfcl_multi_turn'"):
    Trainer(config)


def test_a_resumed_multiturn_run_replays_the_same_episodes(tmp_path):
  """Checkpoint after step 1, go on, restore, repeat step 2: the same records, the same
  sampled turns (lengths, entropy, the policy's share of the tokens), the same metrics."""
  from amrsd.trainer import Trainer
  config = _episode_run(tmp_path, "grpo")
  config.train.steps = 2
  trainer = Trainer(config)
  try:
    with jax.set_mesh(trainer.mesh):
      trainer.run_step()
      trainer.save()
      trainer.checkpointer.wait()
      straight = trainer.run_step()
      assert trainer.restore_latest() and trainer.step == 1
      resumed = trainer.run_step()
  finally:
    trainer.close()
  assert straight["response_length_mean"] > 0 and 0 < straight["policy_token_fraction"] < 1
  assert _comparable([resumed]) == _comparable([straight])
