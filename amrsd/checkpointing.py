"""Checkpoints with orbax: train state (params + optimizer) and JSON run metadata.

The metadata holds what exact resume needs besides arrays: the step (which also fixes
the annealing position and every random stream, see amrsd.rng), the data iterator state
and the config the run started with.
"""

import os

import jax
import orbax.checkpoint as ocp


class Checkpointer:

  def __init__(self, workdir: str, *, keep: int, async_save: bool = True):
    self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
    try:
      os.makedirs(self.directory, exist_ok=True)
    except OSError as e:
      raise OSError(f"cannot create the checkpoint folder {self.directory}: {e}") from e
    if not os.access(self.directory, os.W_OK):
      raise PermissionError(f"checkpoint folder {self.directory} is not writable; choose "
                            "another --config.workdir")
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=keep,
                                             enable_async_checkpointing=async_save))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state, meta: dict) -> None:
    """Starts an async save; orbax writes to a temporary folder and renames when done,
    so a kill mid-save leaves the previous checkpoints intact."""
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))

  def restore(self, step: int, abstract_state):
    """Returns (state, meta); abstract_state gives shapes, dtypes and shardings."""
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
    return restored["state"], restored["meta"]

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


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
