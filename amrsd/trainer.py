"""The training loop: one RL step, prompt to update, and everything around it.

Per step: prompts from the data pipeline -> rollouts (Sampler) -> rewards (verifiers)
-> teacher contexts (amrsd.reflection, the kind named by the method's record in
amrsd.algorithms.registry) -> batch (amrsd.batch) -> teacher program on the rows that
need it (amrsd.algorithms.teacher) -> jitted train step (amrsd.algorithms.step) ->
metrics, plots, checkpoints. rollouts() and learn() split a step where a benchmark
needs the same rollouts for two methods (amrsd.bench.method_cost). Host code lives
here; what a run config builds (sources, policy, optimizer) is in amrsd.run_setup.
"""

import dataclasses
import json
import math
import os
import signal
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from amrsd import config as config_lib
from amrsd import data as data_lib
from amrsd import (distributed, divergence, prompts, reflection, resume, rewards, rng, sharding,
                   workdir_lock)
from amrsd.algorithms import registry
from amrsd.algorithms import teacher as teacher_lib
from amrsd.algorithms.step import init_opt_state, make_train_step
from amrsd.batch import build_batch, teacher_context_ids
from amrsd.checkpointing import Checkpointer, abstract_like
from amrsd.data import oracle
from amrsd.envs import rollout as env_rollout
from amrsd.metrics import MetricsWriter, read_metrics
from amrsd.plot import plot_runs
from amrsd.rewards.registry import validate_name
from amrsd.run_setup import load_policy, make_optimizer, open_sources, task_template
from amrsd.sampling import Sampler
from amrsd.scoring import EpisodeLimits, evaluate_records
from amrsd.teacher_weights import WeightCopies


class TrainingError(RuntimeError):
  """A run that cannot go on (non-finite loss, ...); the last checkpoint is kept."""


class Trainer:
  """Owns the model, sampler, optimizer, data and workdir of one run."""

  def __init__(self, config, *, allow_config_change: bool = False):
    """allow_config_change: resume even if the config changes fields that change the
    run's meaning (amrsd.resume.MEANING)."""
    config_lib.validate(config)
    self.config = config
    self.workdir = config.workdir
    try:
      os.makedirs(self.workdir, exist_ok=True)
    except OSError as e:
      raise OSError(f"cannot create workdir {self.workdir!r}: {e}") from e
    if not os.access(self.workdir, os.W_OK):
      raise PermissionError(f"workdir {self.workdir!r} is not writable; set --config.workdir")
    self.is_primary = jax.process_index() == 0
    self._lock = workdir_lock.acquire(self.workdir, jax.process_index())
    self.checkpointer = Checkpointer(self.workdir, keep=config.checkpoint.keep)
    # Refuses a resume that changes the run's meaning; may pin algorithm.anneal_steps.
    notes = resume.check_resume(self.checkpointer.saved_meta(), config,
                                allow_change=allow_config_change)
    self.algo = config_lib.algorithm_config(config)
    for line in notes + [divergence.learning_rate_warning(config)]:
      if line and self.is_primary:
        print(line, file=sys.stderr, flush=True)

    # Cheap checks first: a bad verifier name or data file fails before the model loads.
    # With an environment its name picks the leak rules and reflection templates.
    self.verifier = config.data.env or validate_name(config.data.verifier)
    train_source, eval_source = open_sources(config)
    for source in (train_source, eval_source):
      _check_env(config, source)

    self.mesh = sharding.make_mesh(config.mesh.shape)
    # Everything below is built under the mesh, as is every training step (train()).
    with jax.set_mesh(self.mesh):
      # With several processes each takes its block of every batch's prompts (all read the
      # same pipeline, so its state is the same everywhere) and of the held-out set.
      self.block, self.blocks = sharding.row_block(self.mesh)
      if config.data.env and self.blocks > 1:
        raise ValueError(f"config.data.env={config.data.env!r}: multi-turn episodes run on one "
                         f"process (sampler sessions), but this run has {self.blocks}; run it "
                         "on one host")
      if config.rollout.prompts_per_step % self.blocks:
        raise ValueError(f"config.rollout.prompts_per_step={config.rollout.prompts_per_step} must "
                         f"be a multiple of the {self.blocks} processes")
      self.model, self.tokenizer, trainable = load_policy(config, self.mesh)
      self.sampler = Sampler(self.model, self.tokenizer, mesh=self.mesh,
                             prompt_buckets=tuple(config.rollout.prompt_buckets),
                             decode_weights=config.rollout.decode_weights)
      self.templates = dict(config.prompts)
      self.pipeline = data_lib.PromptPipeline(
          train_source, self.tokenizer, prompts_per_step=config.rollout.prompts_per_step,
          seed=config.seed, prompt_template=task_template(config),
          max_prompt_tokens=config.data.max_prompt_tokens)
      self.eval_records = self._local(self.pipeline.held_out(eval_source, config.eval.size))

      self.tx = make_optimizer(config, self.model)
      self.graphdef, self.params = nnx.split(self.model)
      self.trainable = trainable
      self.opt_state = init_opt_state(self.tx, self.params, trainable)
      # The teacher's EMA / initial weights and the KL reference, when the run needs them.
      self.copies = WeightCopies(self.algo, self.graphdef, self.params, trainable)
      self.train_step = make_train_step(self.graphdef, self.tx, self.algo, trainable=trainable,
                                        micro_batches=config.train.micro_batches)
      # The teacher forward, on the rows that need it, as its own program (timed apart).
      if registry.get(self.algo.name).teacher != "none":
        self.teacher_fn = teacher_lib.make_teacher_fn(
            self.graphdef, self.algo, trainable=trainable,
            micro_batches=config.train.micro_batches)
      self.step = 0
      self.last_eval = None
      self.last_samples = []  # samples.jsonl rows of the step just run (log.samples_*)
      self.best_eval = None  # best held-out greedy accuracy so far (divergence guard)
      self._stop_requested = False

  # -- checkpoints ---------------------------------------------------------------------

  def _run_meta(self):
    return {"step": self.step, "data": self.pipeline.get_state(),
            "config": json.loads(self.config.to_json_best_effort()),
            "best_eval_accuracy": self.best_eval}

  def _state(self):
    """What a checkpoint holds: params, optimizer state and the weight copies, if any."""
    state = {"params": self.params, "opt_state": self.opt_state}
    if self.copies.arrays:
      state["copies"] = self.copies.arrays
    return state

  def save(self):
    self.checkpointer.save(self.step, self._state(), self._run_meta())

  def restore_latest(self) -> bool:
    restored = self.checkpointer.restore_latest(abstract_like(self._state()))
    if restored is None:
      return False
    _, state, meta = restored
    self.params, self.opt_state = state["params"], state["opt_state"]
    self.copies.arrays = state.get("copies", {})
    nnx.update(self.model, self.params)
    self.pipeline.set_state(meta["data"])
    self.step = int(meta["step"])
    self.best_eval = meta.get("best_eval_accuracy")
    return True

  def _guard(self, metrics):
    """Stops a run that diverged at this step (amrsd.divergence), after its metrics row
    is logged and before anything of it is saved; confirms the previous checkpoint when
    the weights that entered the step passed."""
    c, step = self.config, self.step
    found = divergence.step_signal(metrics, step=step, guard=c.guard,
                                   vocab_size=self.model.config.vocab_size)
    if found is None or not found.judges_input:
      self.checkpointer.mark_good(step - 1)
    if found is None and "eval_accuracy" in metrics:
      found = divergence.eval_signal(metrics["eval_accuracy"], self.best_eval, step=step,
                                     guard=c.guard,
                                     problems=len(self.eval_records) * self.blocks)
    if found is None:
      if "eval_accuracy" in metrics:
        self.best_eval = max(metrics["eval_accuracy"], self.best_eval or 0.0)
      return
    self.checkpointer.record_divergence(step, found.describe())
    raise TrainingError(divergence.stop_message(found, self.checkpointer.good_step,
                                                self.checkpointer.directory,
                                                c.train.learning_rate))

  # -- one step ------------------------------------------------------------------------

  def run_step(self) -> dict:
    """One RL step; returns its metrics (host floats, over every process's rows)."""
    return self.learn(self.rollouts())

  def rollouts(self) -> "Rollouts":
    """The step's prompts, sampled groups and verdicts (advances the data pipeline)."""
    c, k = self.config, self.step
    records = self._local(next(self.pipeline))
    seed = rng.stream(c.seed, k, "rollout")
    if c.data.env:
      return self._play(records, seed=seed)
    times = {}
    t0 = time.perf_counter()
    result = self.sampler.generate(
        [r["prompt_ids"] for r in records], n=c.rollout.group_size,
        max_new_tokens=c.rollout.max_new_tokens, temperature=c.rollout.temperature,
        top_p=c.rollout.top_p, seed=seed)
    times["time_sample"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    row_records = [records[i // c.rollout.group_size] for i in range(len(result.texts))]
    verdicts = rewards.verify_batch(self.verifier, result.texts, row_records)
    times["time_verify"] = time.perf_counter() - t0
    return Rollouts(records, result, np.array([v.reward for v in verdicts], np.float32),
                    [v.feedback for v in verdicts], result.texts,
                    [r == "length" for r in result.stop_reasons], times)

  def _play(self, records, *, seed) -> "Rollouts":
    """Rollouts as episodes of config.data.env: rollout.group_size episodes per record,
    played together on one sampler session (amrsd.envs.rollout)."""
    c = self.config
    t0 = time.perf_counter()
    out = env_rollout.play_records(
        self.sampler, records, n=c.rollout.group_size, max_turns=c.rollout.max_turns,
        max_tokens_per_turn=c.rollout.max_tokens_per_turn, max_tokens=c.rollout.max_new_tokens,
        temperature=c.rollout.temperature, top_p=c.rollout.top_p, seed=seed)
    # The environments' steps and checks run inside play: one time for the whole episode.
    times = {"time_sample": time.perf_counter() - t0}
    return Rollouts(records, out.trajectories,
                    np.array([v.reward for v in out.verdicts], np.float32),
                    [v.feedback for v in out.verdicts], out.texts, out.clipped, times,
                    out.metrics)

  def learn(self, rollouts: "Rollouts") -> dict:
    """Reflection, teacher and update on one step's rollouts; returns the step's metrics."""
    c, k = self.config, self.step
    records, result, reward = rollouts.records, rollouts.result, rollouts.reward
    texts, times = rollouts.texts, dict(rollouts.times)
    method = registry.get(c.algorithm.name)
    # Every process's rewards, in batch order: whether any row can use a teacher is
    # decided on the whole batch, so that processes agree (reflection is a collective).
    all_reward = distributed.gather(reward).reshape(-1)
    teacher_on = method.teacher != "none" and bool(np.asarray(teacher_lib.needed_rows(
        self.algo, np.ones_like(all_reward), all_reward, k)).any())

    t0 = time.perf_counter()
    teacher, host_stats, hints = self._teacher_messages(records, texts, reward,
                                                        rollouts.feedback, k, active=teacher_on)
    times["time_reflect"] = time.perf_counter() - t0
    every = c.log.samples_every_steps
    if self.is_primary and every and (k + 1) % every == 0:
      self.last_samples = sample_groups(rollouts, hints, c.rollout.group_size,
                                        c.log.samples_groups)

    t0 = time.perf_counter()
    if teacher is not None:
      teacher = teacher_context_ids(result, teacher, self.tokenizer)
    longest = max(map(len, teacher[0])) if teacher is not None else 0
    batch = build_batch(result, reward, self.sampler.pad_id, teacher,
                        longest_context=int(distributed.gather(longest).max()))
    if method.teacher != "none" and teacher is None:  # annealed out, or no group with signal
      batch["has_hint"] = np.zeros(len(reward), np.float32)
    # Per row: reward, response length, clipped, student tokens the update reads
    # (padding excluded), response tokens where the teacher row differs from the student's
    # (it must score the same tokens); gathered so that host metrics cover every process.
    R = batch["response_mask"].shape[1]
    differs = (batch["teacher_ids"][:, -R:] != batch["student_ids"][:, -R:]
               if "teacher_ids" in batch else np.zeros_like(batch["response_mask"]))
    per_row = np.stack([reward, result.completion_mask.sum(axis=1),
                        rollouts.clipped, batch["student_mask"].sum(axis=1),
                        (differs * batch["response_mask"]).sum(axis=1)], axis=1)
    per_row = distributed.gather(per_row.astype(np.float64)).reshape(-1, per_row.shape[1])
    all_hints = (distributed.gather(batch["has_hint"]).reshape(-1)
                 if "has_hint" in batch else None)
    batch = sharding.put_batch(self.mesh, batch)
    # teacher_forward=stacked: the update runs every teacher row stacked with the student's
    # in its own forward (algorithms/step.py); without teacher rows the program below
    # gives the zeros the update reads.
    stacked = c.algorithm.teacher_forward == "stacked" and "teacher_ids" in batch
    if method.teacher != "none":
      if stacked:
        host_stats["teacher_rows"] = float(len(all_reward))
      else:
        t_teacher = time.perf_counter()
        rows = teacher_lib.row_bucket(self.algo, all_hints, all_reward, k,
                                      c.train.micro_batches)
        out = self.teacher_fn(self.params, batch, jnp.int32(k), self.copies.teacher_state(),
                              rows=rows)
        batch.update(jax.block_until_ready(out))
        # The update reads the teacher's outputs, not its rows: without them its program
        # does not depend on the context width, and a new width compiles only the teacher
        # program.
        batch.pop("teacher_ids", None), batch.pop("teacher_mask", None)
        times["time_teacher"] = time.perf_counter() - t_teacher
        host_stats["teacher_rows"] = float(rows * c.train.micro_batches)
      host_stats["teacher_rows_needed"] = float(np.asarray(teacher_lib.needed_rows(
          self.algo, all_hints, all_reward, k)).sum())
    if self.algo.kl_coef > 0:
      batch["logp_ref"] = self.copies.reference_logprobs(self.params, batch)
    self.params, self.opt_state, metrics = self.train_step(
        self.params, self.opt_state, batch, jnp.int32(k), self.copies.teacher_state())
    metrics = {name: float(v) for name, v in metrics.items()}
    times["time_update"] = time.perf_counter() - t0 - times.get("time_teacher", 0.0)
    if metrics.get("update_skipped", 0.0) or not math.isfinite(metrics["loss"]):
      raise TrainingError(f"step {k}: non-finite loss or gradients (loss={metrics['loss']}); "
                          "the update was not applied and the last checkpoint is kept. "
                          "Lower train.learning_rate or check the data.")
    nnx.update(self.model, self.params)
    self.copies.after_update(self.params)

    metrics.update(host_stats)
    metrics.update(rollouts.metrics)
    metrics.update(times)
    all_reward, lengths, clipped, update_tokens, mismatched = per_row.T
    metrics["teacher_token_mismatch"] = float(mismatched.sum() / max(lengths.sum(), 1))
    metrics["reward_std"] = float(all_reward.std())
    metrics["response_length_max"] = float(lengths.max())
    metrics["response_clipped_fraction"] = float(clipped.mean())
    metrics["tokens_per_second_sample"] = float(lengths.sum() / max(times["time_sample"], 1e-9))
    metrics["tokens_per_second_update"] = float(update_tokens.sum() /
                                                max(times["time_update"], 1e-9))
    metrics["filtered_too_long"] = float(self.pipeline.stats["filtered_too_long"])
    self.step = k + 1
    return metrics

  def _local(self, items):
    """This process's contiguous share of a list that every process holds whole."""
    per = -(-len(items) // self.blocks)
    return items[self.block * per:(self.block + 1) * per]

  def _teacher_messages(self, records, texts, reward, feedback, step, *, active=True):
    """Teacher chat messages per rollout (None = no teacher), reflection metrics and the
    hints (str or None per rollout; all None where the method writes none).

    active=False: no row of the batch can use a teacher this step (annealed out, or no
    group with signal): no reflection, no teacher rows."""
    c, G = self.config, self.config.rollout.group_size
    context = registry.get(c.algorithm.name).context
    if context == "hint" and c.reflection.teacher_context == "raw_reference":
      context = "reference"  # the ablation without the reflection bottleneck
    hints = [None] * len(texts)
    if context == "none":
      return None, {}, hints
    if not active:
      rows = len(texts) * self.blocks
      skipped = reflection.ReflectionStats(hints_skipped=rows, hints_empty=rows)
      return None, (_reflection_metrics(skipped, rows)
                    if context == "hint" else {}), hints
    stats = {}
    packets = reflection.diagnose(records, texts, reward, feedback, G,
                                  success_threshold=c.algorithm.success_threshold)
    if context == "hint":
      def sample(requests, attempt, n=1):
        key = jax.random.fold_in(rng.stream(c.seed, step, "reflect"), attempt)
        return self.sampler.generate(requests, n=n, max_new_tokens=c.reflection.hint_max_tokens,
                                     temperature=c.reflection.hint_temperature, seed=key)
      write, request = sample, None
      if c.reflection.retry == "parallel":
        write = reflection.SampledRetries(lambda requests, n: sample(requests, 0, n))
      if c.reflection.hint_source == "oracle":  # the mechanism check: the task writes them
        write, request = oracle.write_hints, oracle.hint_request
      hints, rstats = reflection.reflect(
          write, records, texts, packets, G, rewards=reward,
          granularity=c.reflection.hint_granularity, verifier=self.verifier,
          templates=self.templates, tokenizer=self.tokenizer, collective=self.blocks > 1,
          request=request, attempt_max_chars=c.reflection.attempt_max_chars,
          peer_max_chars=c.reflection.peer_max_chars, leak_ngram=c.reflection.leak_ngram,
          leak_max_copied=c.reflection.leak_max_copied)
      # Summed over processes: every process reflected on its own rollouts.
      rstats = reflection.ReflectionStats(
          *map(int, distributed.gather(dataclasses.astuple(rstats)).sum(axis=0)))
      stats = _reflection_metrics(rstats, len(texts) * self.blocks)
    teacher = reflection.teacher_contexts(context, records, packets, hints, G,
                                          templates=self.templates)
    # The teacher reads the row's system prompt too (SciKnowEval's answer format, BFCL's tools).
    teacher = [prompts.with_system(m, records[i // G].get("system")) for i, m in enumerate(teacher)]
    return teacher, stats, hints

  # -- evaluation and the loop ---------------------------------------------------------

  def evaluate(self) -> dict:
    c = self.config
    tokens = c.eval.max_new_tokens if c.eval.max_new_tokens > 0 else c.rollout.max_new_tokens
    # Environment records are played as episodes within the rollouts' limits.
    common = dict(template=task_template(c), samples=1, max_new_tokens=tokens,
                  episodes=EpisodeLimits(c.rollout.max_turns, c.rollout.max_tokens_per_turn))
    label = lambda kind: f"held-out, {kind}" if c.log.progress else ""
    greedy = evaluate_records(self.sampler, self.eval_records, self.verifier,
                              temperature=0.0, seed=0, progress=label("greedy"), **common)
    sampled = evaluate_records(self.sampler, self.eval_records, self.verifier,
                               temperature=c.rollout.temperature,
                               seed=rng.stream(c.seed, self.step, "eval"),
                               progress=label("sampled"), **common)
    self.last_eval = {"eval_accuracy": greedy["avg@1"], "eval_accuracy_sampled": sampled["avg@1"]}
    return self.last_eval

  def request_stop(self, *_):
    self._stop_requested = True

  def train(self):
    """Runs (or resumes) to config.train.steps; returns the final evaluation."""
    with jax.set_mesh(self.mesh):
      return self._train()

  def _train(self):
    c = self.config
    resumed = self.restore_latest()
    if resumed and self.is_primary:
      print(f"resumed from step {self.step} of {c.train.steps} ({self.checkpointer.directory})",
            file=sys.stderr, flush=True)
    writer = MetricsWriter(self.workdir, resume_step=self.step, enabled=self.is_primary,
                           wandb_project=c.log.wandb_project, wandb_entity=c.log.wandb_entity,
                           run_config=c.to_dict())
    previous = signal.signal(signal.SIGTERM, self.request_stop)
    try:
      if not resumed:
        writer.write(0, self.evaluate())
        self.best_eval = self.last_eval["eval_accuracy"]
      progress = _progress(c, self.step, self.is_primary)
      while self.step < c.train.steps:
        start = time.perf_counter()
        metrics = self.run_step()
        metrics["step_seconds"] = time.perf_counter() - start
        if self.step == c.train.steps or (c.eval.every_steps and
                                          self.step % c.eval.every_steps == 0):
          metrics.update(self.evaluate())
        writer.write(self.step, metrics)
        writer.write_samples(self.step, self.last_samples)
        self.last_samples = []
        self._guard(metrics)
        if progress is not None:
          progress.set_postfix(reward=f"{metrics['reward_mean']:.3f}",
                               acc=f"{metrics['accuracy']:.3f}")
          progress.update(1)
        # Saving is a collective: processes agree on a stop that reached any of them.
        stop = bool(distributed.gather(self._stop_requested).any())
        if self.step % c.checkpoint.every_steps == 0 or stop:
          self.save()
        if self.is_primary and self.step % c.log.plot_every_steps == 0:
          plot_runs([self.workdir], os.path.join(self.workdir, "plots"))
        if stop:
          self.checkpointer.wait()
          raise SystemExit(f"SIGTERM: saved step {self.step} to {self.checkpointer.directory}; "
                           "run the same command again to resume")
      if progress is not None:
        progress.close()
      if self.checkpointer.latest_step() != self.step:
        self.save()
      if self.last_eval is None:  # resumed at the end: the last evaluation is in the log
        self.last_eval = [r for r in read_metrics(writer.path) if "eval_accuracy" in r][-1]
      final = {"step": self.step,
               **{k: v for k, v in self.last_eval.items() if k.startswith("eval_")}}
      if self.is_primary:
        with open(os.path.join(self.workdir, "final_eval.json"), "w") as f:
          json.dump(final, f, indent=2)
        plot_runs([self.workdir], os.path.join(self.workdir, "plots"))
      return final
    finally:
      signal.signal(signal.SIGTERM, previous)
      writer.close()
      self.close()

  def close(self):
    """Finishes pending checkpoint writes and releases the workdir."""
    self.checkpointer.close()
    self._lock.close()


@dataclasses.dataclass
class Rollouts:
  """One step's sampled groups and verdicts, this process's rows (Trainer.rollouts)."""
  records: list          # prompt records, one per group
  # The sampler's SampleResult, or with data.env the episodes' Trajectories
  # (amrsd.sampling.session); rows group-major.
  result: object
  reward: np.ndarray     # [rows] float32
  feedback: list         # the verifier's feedback per row
  texts: list            # what reflection reads per row: the completion, or the episode
  clipped: list          # per row: cut at the token limit
  times: dict            # time_sample, time_verify (s)
  metrics: dict = dataclasses.field(default_factory=dict)  # the environment's, per step


def _check_env(config, source):
  """A source's records are episodes of config.data.env exactly when it is set."""
  env, given = config.data.env, source[0].get("env") or ""
  if env == given:
    return
  if env:
    raise ValueError(f"config.data.env={env!r}, but {source!r} (config.data.task="
                     f"{config.data.task!r}) gives "
                     f"{f'episodes of {given!r}' if given else 'single prompts'}; use episodes "
                     "of that environment, e.g. config.data.task='bfcl_mt:base'")
  raise ValueError(f"{source!r} (config.data.task={config.data.task!r}) gives episodes of the "
                   f"environment {given!r}; set config.data.env={given!r} to play them")


def sample_groups(rollouts: Rollouts, hints, group_size: int, groups: int) -> list[dict]:
  """The first `groups` groups of a step's rollouts, as samples.jsonl rows (without the
  step): problem, gold, and per rollout the completion (an episode's transcript),
  reward, the verifier's feedback, whether it was clipped, and its hint (or None)."""
  out = []
  for g, record in enumerate(rollouts.records[:groups]):
    rows = range(g * group_size, (g + 1) * group_size)
    out.append({"group": g, "problem": record.get("problem"), "gold": record.get("answer"),
                "rollouts": [{"completion": rollouts.texts[i],
                              "reward": float(rollouts.reward[i]),
                              "feedback": rollouts.feedback[i],
                              "clipped": bool(rollouts.clipped[i]), "hint": hints[i]}
                             for i in rows]})
  return out


def _reflection_metrics(rstats, rows):
  """The step metrics of one step's reflection (counts over all processes' `rows`)."""
  return {"hint_requests": rstats.hint_requests,
          "hints_made": rstats.hints_made, "hints_rejected": rstats.hints_rejected,
          "hints_retried": rstats.hints_retried, "hints_empty": rstats.hints_empty,
          "hints_unfinished": rstats.hints_unfinished,
          "hints_skipped": rstats.hints_skipped,
          "hint_length_mean": rstats.hint_length_mean,
          "hint_tokens_mean": rstats.hint_tokens_mean,
          "hint_leak_rate": rstats.leak_rate,
          "hint_fraction": rstats.hints_made / rows}


def _progress(config, start, enabled):
  if not (enabled and config.log.progress):
    return None
  from tqdm import tqdm
  return tqdm(total=config.train.steps, initial=start, desc=config.algorithm.name, unit="step",
              dynamic_ncols=True)
