"""Rotation keeps the last good checkpoint; restore falls back past damaged ones; read-only
restore for evaluation reads the run's metadata and params and writes nothing."""

import glob
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amrsd.checkpointing import (Checkpointer, CheckpointError, abstract_like, read_latest_meta,
                                restore_params)

STATE = {"w": jax.random.normal(jax.random.key(0), (1000,)), "b": (np.float32(1.0),)}


def _saved(workdir, steps, good=None, keep=2):
  c = Checkpointer(str(workdir), keep=keep, async_save=False)
  for step in steps:
    c.save(step, STATE, {"step": step})
    if step == good:
      c.mark_good(step)
  c.close()
  return Checkpointer(str(workdir), keep=keep, async_save=False)


def _truncate_largest_array_file(workdir, step):
  files = glob.glob(f"{workdir}/checkpoints/{step}/state/**/d/*", recursive=True)
  largest = max(files, key=os.path.getsize)
  os.truncate(largest, os.path.getsize(largest) // 2)


def test_rotation_never_deletes_the_last_good_checkpoint(tmp_path):
  c = _saved(tmp_path, [1, 2, 3, 4], good=1)
  assert sorted(c._manager.all_steps()) == [1, 3, 4] and c.good_step == 1


def test_a_truncated_latest_checkpoint_falls_back_to_the_previous(tmp_path, capsys):
  c = _saved(tmp_path, [1, 2])
  _truncate_largest_array_file(tmp_path, 2)
  step, state, meta = c.restore_latest(abstract_like(STATE))
  assert (step, meta) == (1, {"step": 1})
  np.testing.assert_array_equal(state["w"], STATE["w"])
  assert "checkpoint step 2 does not restore" in capsys.readouterr().err
  assert os.path.isdir(tmp_path / "damaged_checkpoints" / "2")
  assert c.latest_step() == 1


def test_no_restorable_checkpoint_names_every_folder(tmp_path):
  c = _saved(tmp_path, [1, 2])
  for step in (1, 2):
    _truncate_largest_array_file(tmp_path, step)
  with pytest.raises(CheckpointError, match=r"no checkpoint restores: .*checkpoints/2: .*"
                                            r"checkpoints/1: "):
    c.restore_latest(abstract_like(STATE))


def test_after_a_divergence_the_resume_point_is_the_last_good(tmp_path, capsys):
  c = _saved(tmp_path, [1, 2, 3], good=2, keep=3)
  c.record_divergence(4, "divergence at step 4: entropy")
  c.close()
  step, _, _ = Checkpointer(str(tmp_path), keep=3).restore_latest(abstract_like(STATE))
  assert step == 2
  assert "diverged at step 4; resuming from the last good checkpoint, step 2" in \
      capsys.readouterr().err
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2", "last_good.json"]


def test_restore_params_reads_only_the_params_of_the_latest_step(tmp_path):
  params = {"w": jnp.arange(6, dtype=jnp.float32).reshape(2, 3), "b": jnp.ones((3,), jnp.bfloat16)}
  opt_state = {"mu": jnp.full((2, 3), 7.0)}
  ckpt = Checkpointer(str(tmp_path), keep=2)
  ckpt.save(1, {"params": params, "opt_state": opt_state}, {"step": 1, "config": {"seed": 3}})
  later = {"w": params["w"] + 1, "b": params["b"]}
  ckpt.save(2, {"params": later, "opt_state": opt_state}, {"step": 2, "config": {"seed": 3}})
  ckpt.close()
  before = sorted(os.listdir(tmp_path / "checkpoints"))
  step, meta = read_latest_meta(str(tmp_path))
  assert step == 2 and meta["config"] == {"seed": 3}
  restored = restore_params(str(tmp_path), step, abstract_like(params))
  np.testing.assert_array_equal(restored["w"], later["w"])
  assert restored["b"].dtype == jnp.bfloat16
  assert sorted(os.listdir(tmp_path / "checkpoints")) == before


def test_missing_checkpoint_is_named_and_nothing_is_created(tmp_path):
  with pytest.raises(FileNotFoundError, match="no checkpoint found under"):
    read_latest_meta(str(tmp_path / "nowhere"))
  assert not (tmp_path / "nowhere").exists()
  os.makedirs(tmp_path / "empty" / "checkpoints")
  with pytest.raises(FileNotFoundError, match="empty"):
    read_latest_meta(str(tmp_path / "empty"))
