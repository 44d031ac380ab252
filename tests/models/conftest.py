"""Fixture checkpoints of tests/fixtures (see its README.md) and their reference logits."""

import functools

import jax
import numpy as np
import pytest
from flax import nnx

from amrsd import models
from tests.conftest import FIXTURES

# Random Hugging Face checkpoints written by tests/fixtures/make_reference.py.
CHECKPOINTS = ("llama_tied", "llama3_untied", "qwen2", "qwen3")


def checkpoint_dir(name: str) -> str:
  return str(FIXTURES / "checkpoints" / name)


def reference(name: str) -> dict[str, np.ndarray]:
  """transformers' float32 outputs: input_ids, attention_mask [B, T], logits [B, T, V], ..."""
  with np.load(FIXTURES / "logits" / f"{name}.npz") as data:
    return dict(data)


def max_diff_on_real_tokens(logits, expected, attention_mask) -> float:
  real = np.asarray(attention_mask).astype(bool)
  return float(np.abs(np.asarray(logits) - expected)[real].max())


@pytest.fixture(scope="session")
def fixture_models():
  """name -> (model, tokenizer) of every fixture checkpoint, loaded once per session."""
  return {name: models.load(checkpoint_dir(name)) for name in CHECKPOINTS}


def forward(model, input_ids, attention_mask=None, *, cache=None):
  """model(input_ids, attention_mask, cache=cache), jitted: compiled once per shape, where an
  eager call would trace and compile the layer scan again every time."""
  graphdef, state = nnx.split(model)
  return _jitted_call(graphdef, state, input_ids, attention_mask, cache)


@functools.partial(jax.jit, static_argnums=0)
def _jitted_call(graphdef, state, input_ids, attention_mask, cache):
  return nnx.merge(graphdef, state)(input_ids, attention_mask, cache=cache)
