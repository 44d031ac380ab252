"""Read-only restore for evaluation: the run's metadata and params, nothing written."""

import os

import jax.numpy as jnp
import numpy as np
import pytest

from amrsd.checkpointing import Checkpointer, abstract_like, read_latest_meta, restore_params


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
