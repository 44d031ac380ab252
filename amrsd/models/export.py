"""Export to a Hugging Face folder that transformers loads back."""

import json
import os

import numpy as np
from flax import nnx

from amrsd.models import params as params_lib
from amrsd.models.decoder import Decoder


def save_hf(model: Decoder, tokenizer, folder: str) -> None:
  """Writes config.json, model.safetensors (float32) and the tokenizer files into folder."""
  from safetensors.numpy import save_file
  os.makedirs(folder, exist_ok=True)
  config = model.config
  state = nnx.state(model, nnx.Param)
  merged = model.layer_weights()  # LoRA adapters folded into the block weights
  arrays = {name: np.asarray(merged[name] if name in merged else state[name][...],
                             dtype=np.float32)
            for name in params_lib.param_names(config)}
  tensors = params_lib.params_to_hf(config, arrays)
  tmp = os.path.join(folder, "model.safetensors.tmp")
  save_file(tensors, tmp, metadata={"format": "pt"})
  os.replace(tmp, os.path.join(folder, "model.safetensors"))
  with open(os.path.join(folder, "config.json"), "w") as f:
    json.dump(config.to_hf(), f, indent=2)
  if tokenizer is not None:
    tokenizer.save_pretrained(folder)
