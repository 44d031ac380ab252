"""Checkpoints with orbax: train state (params + optimizer) and JSON run metadata.

The metadata holds what exact resume needs besides arrays: the step (which also fixes
the annealing position and every random stream, see amrsd.rng), the data iterator state
and the config the run started with.

Two markers sit beside the step folders. last_good.json names the newest checkpoint
whose weights a later check confirmed (the next step's rollouts and gradient, see
amrsd.divergence); rotation never deletes it, whatever checkpoint.keep says.
diverged.json records a stopped divergence: the next run resumes from the last good
checkpoint, not from the newer unconfirmed ones. A checkpoint that does not restore
(truncated file, missing metadata) is moved to workdir/damaged_checkpoints/ and the
previous one is used, with a line on stderr.
"""

import json
import os
import shutil
import sys

import jax
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
  """No checkpoint of the workdir restores; the message names every step folder tried."""


class _KeepLatestAndGood:
  """orbax preservation policy: the newest `keep` checkpoints and the last good one."""

  def __init__(self, keep: int, good: int | None):
    self.keep, self.good = keep, good

  def should_preserve(self, checkpoints, *, context):
    del context
    newest = sorted(c.step for c in checkpoints)[-self.keep:]
    return [c.step in newest or c.step == self.good for c in checkpoints]


class Checkpointer:

  def __init__(self, workdir: str, *, keep: int, async_save: bool = True):
    self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
    self.damaged_directory = os.path.abspath(os.path.join(workdir, "damaged_checkpoints"))
    try:
      os.makedirs(self.directory, exist_ok=True)
    except OSError as e:
      raise OSError(f"cannot create the checkpoint folder {self.directory}: {e}") from e
    if not os.access(self.directory, os.W_OK):
      raise PermissionError(f"checkpoint folder {self.directory} is not writable; choose "
                            "another --config.workdir")
    good = self._read_marker("last_good.json")
    self._policy = _KeepLatestAndGood(keep, good and good["step"])
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(preservation_policy=self._policy,
                                             enable_async_checkpointing=async_save))
    self._saved = set(self._manager.all_steps())

  @property
  def good_step(self) -> int | None:
    return self._policy.good

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state, meta: dict) -> None:
    """Starts an async save; orbax writes to a temporary folder and renames when done,
    so a kill mid-save leaves the previous checkpoints intact."""
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))
    self._saved.add(step)

  def restore(self, step: int, abstract_state):
    """Returns (state, meta); abstract_state gives shapes, dtypes and shardings."""
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
    return restored["state"], restored["meta"]

  def saved_meta(self) -> tuple[int, dict] | None:
    """(step, metadata) of the newest checkpoint whose metadata reads; no arrays load."""
    for step in sorted(self._manager.all_steps(), reverse=True):
      try:
        meta = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return step, meta["meta"]
      except Exception:  # a damaged checkpoint: restore_latest says which and falls back
        continue
    return None

  def restore_latest(self, abstract_state):
    """(step, state, meta) of the newest checkpoint that restores, or None when there is
    none. After a recorded divergence, checkpoints newer than the last good one are
    deleted first. Damaged checkpoints are moved aside, saying so on stderr; raises
    CheckpointError naming the folders when checkpoints exist but none restores."""
    self._drop_after_divergence()
    failures = {}
    for step in sorted(self._manager.all_steps(), reverse=True):
      try:
        state, meta = self.restore(step, abstract_state)
      except Exception as e:  # orbax raises many types for a damaged or mismatched tree
        failures[step] = f"{os.path.join(self.directory, str(step))}: {_first_line(e)}"
        _say(f"checkpoint step {step} does not restore ({failures[step]}); trying the "
             "previous checkpoint")
        continue
      for damaged in failures:  # kept for inspection, out of the way of new saves
        self._move_aside(damaged)
      return step, state, meta
    if failures:
      raise CheckpointError(
          f"no checkpoint restores: {'; '.join(failures.values())}. If the model, "
          "train.trainable or model.dtype changed, the saved trees no longer fit: use "
          "another --config.workdir")
    return None

  def mark_good(self, step: int) -> None:
    """Records that a check confirmed the weights of `step` (if it was saved)."""
    if step not in self._saved or step == self._policy.good:
      return
    self._policy.good = step
    self._write_marker("last_good.json", {"step": step})

  def record_divergence(self, step: int, description: str) -> None:
    """Makes the next run resume from the last good checkpoint (see restore_latest)."""
    self.wait()
    self._write_marker("diverged.json", {"step": step, "description": description,
                                         "last_good": self._policy.good})

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()

  def _drop_after_divergence(self):
    diverged = self._read_marker("diverged.json")
    if diverged is None:
      return
    good = self._policy.good
    suspect = [s for s in self._manager.all_steps() if good is None or s > good]
    _say(f"the run diverged at step {diverged['step']}; resuming from "
         + (f"the last good checkpoint, step {good}" if good is not None else
            "the initial weights (no checkpoint was confirmed good)")
         + (f"; deleting the unconfirmed checkpoint(s) {suspect}" if suspect else ""))
    for step in suspect:  # every process: orbax's delete ends in a barrier
      self._manager.delete(step)
    if jax.process_index() == 0:
      os.remove(os.path.join(self.directory, "diverged.json"))

  def _move_aside(self, step):
    if jax.process_index() == 0:
      os.makedirs(self.damaged_directory, exist_ok=True)
      target = os.path.join(self.damaged_directory, str(step))
      shutil.rmtree(target, ignore_errors=True)
      shutil.move(os.path.join(self.directory, str(step)), target)
      _say(f"moved the damaged checkpoint step {step} to {target}")
    self._manager.reload()

  def _read_marker(self, name):
    try:
      with open(os.path.join(self.directory, name)) as f:
        return json.load(f)
    except FileNotFoundError:
      return None
    except ValueError:
      _say(f"ignoring the unreadable {os.path.join(self.directory, name)}")
      return None

  def _write_marker(self, name, value):
    if jax.process_index() != 0:
      return
    path = os.path.join(self.directory, name)
    with open(path + ".tmp", "w") as f:
      json.dump(value, f)
    os.replace(path + ".tmp", path)


def _first_line(error: Exception) -> str:
  text = str(error).strip().splitlines()
  # TensorStore appends a repr of its spec to the first line; the start says enough.
  line = (text[0] if text else "").split(" See full TensorStore details")[0]
  return f"{type(error).__name__}: {line[:300]}"


def _say(message: str) -> None:
  if jax.process_index() == 0:
    print(message, file=sys.stderr, flush=True)


def abstract_like(tree):
  """ShapeDtypeStructs (with shardings) of a pytree of arrays, for restore."""
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)),
      tree)


def _read_only_manager(workdir: str):
  """A manager over workdir/checkpoints that writes nothing; FileNotFoundError names the
  folder when there is no checkpoint (nothing is created under a wrong path)."""
  directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
  manager = None
  if os.path.isdir(directory):
    manager = ocp.CheckpointManager(directory,
                                    options=ocp.CheckpointManagerOptions(read_only=True))
  if manager is None or manager.latest_step() is None:
    raise FileNotFoundError(f"{workdir}: no checkpoint found under {directory}")
  return manager


def read_latest_meta(workdir: str) -> tuple[int, dict]:
  """(step, run metadata) of the latest checkpoint in workdir, read only; the metadata's
  "config" is the config the run was trained with."""
  manager = _read_only_manager(workdir)
  step = manager.latest_step()
  meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
  manager.close()
  return step, meta


def restore_params(workdir: str, step: int, abstract_params):
  """The "params" of checkpoint `step` in workdir (for evaluation: the optimizer state
  is not read). abstract_params: ShapeDtypeStructs with shardings (abstract_like)."""
  manager = _read_only_manager(workdir)
  restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
      item={"params": abstract_params}, partial_restore=True,
      restore_args=jax.tree.map(lambda x: ocp.ArrayRestoreArgs(sharding=x.sharding,
                                                               dtype=x.dtype),
                                {"params": abstract_params}))))
  manager.close()
  return restored["state"]["params"]
