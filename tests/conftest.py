"""Test setup: JAX on CPU with 8 fake devices, shared model fixtures."""

import os

# Must happen before JAX is imported anywhere.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8").strip()
os.environ["JAX_PLATFORMS"] = "cpu"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pathlib

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

jax.config.update("jax_default_matmul_precision", "highest")

from amrsd import models

REPO = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"


def tiny_config(model_type="llama", **overrides):
  """A small random architecture that compiles in a second."""
  fields = dict(model_type=model_type, vocab_size=128, hidden_size=32, intermediate_size=64,
                num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                rope_theta=10000.0, tie_word_embeddings=True, eos_token_id=1, pad_token_id=0,
                attention_bias=model_type == "qwen2", qk_norm=model_type == "qwen3")
  fields.update(overrides)
  return models.ModelConfig(**fields)


@pytest.fixture
def tiny_model():
  return models.Decoder(tiny_config(), rngs=nnx.Rngs(0))


@pytest.fixture(scope="session")
def smollm():
  """(model, tokenizer) of the real default model, loaded once per session."""
  return models.load(models.default_model_path())
