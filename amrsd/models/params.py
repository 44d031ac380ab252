"""How checkpoint tensors map onto the Decoder's stacked parameters.

Hugging Face names are the common language: GGUF names are translated to them first.
HF linear weights are [out, in]; the Decoder stores [in, out], hence the transposes.
"""

import re

import numpy as np

from amrsd.models.config import ModelConfig

# Decoder parameter -> (HF name, with {i} for the layer, transposed?)
_LAYER_PARAMS = {
    "attn_norm": ("model.layers.{i}.input_layernorm.weight", False),
    "wq": ("model.layers.{i}.self_attn.q_proj.weight", True),
    "wk": ("model.layers.{i}.self_attn.k_proj.weight", True),
    "wv": ("model.layers.{i}.self_attn.v_proj.weight", True),
    "wo": ("model.layers.{i}.self_attn.o_proj.weight", True),
    "bq": ("model.layers.{i}.self_attn.q_proj.bias", False),
    "bk": ("model.layers.{i}.self_attn.k_proj.bias", False),
    "bv": ("model.layers.{i}.self_attn.v_proj.bias", False),
    "q_norm": ("model.layers.{i}.self_attn.q_norm.weight", False),
    "k_norm": ("model.layers.{i}.self_attn.k_norm.weight", False),
    "mlp_norm": ("model.layers.{i}.post_attention_layernorm.weight", False),
    "w_gate": ("model.layers.{i}.mlp.gate_proj.weight", True),
    "w_up": ("model.layers.{i}.mlp.up_proj.weight", True),
    "w_down": ("model.layers.{i}.mlp.down_proj.weight", True),
}
_GLOBAL_PARAMS = {
    "embed": ("model.embed_tokens.weight", False),
    "final_norm": ("model.norm.weight", False),
    "lm_head": ("lm_head.weight", True),
}

# GGUF tensor name pieces -> HF name pieces.
_GGUF_TO_HF = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_GGUF_LAYER_TO_HF = {
    "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
    "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
    "ffn_norm": "post_attention_layernorm", "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}


def param_names(config: ModelConfig) -> list[str]:
  """Names of the Decoder's parameters for this architecture."""
  names = ["embed", "final_norm"] + (["lm_head"] if not config.tie_word_embeddings else [])
  for name in _LAYER_PARAMS:
    if name in ("bq", "bk", "bv") and not config.attention_bias:
      continue
    if name in ("q_norm", "k_norm") and not config.qk_norm:
      continue
    names.append(name)
  return names


def hf_to_params(config: ModelConfig, read, expected_shapes: dict[str, tuple], source: str):
  """Builds every Decoder parameter from HF-named tensors.

  read(hf_name) -> np.ndarray or None when the checkpoint lacks that tensor.
  expected_shapes: Decoder parameter name -> shape. source names the checkpoint in errors.
  Returns {param name: np.ndarray} with stacked layers.
  """
  out = {}
  for name in param_names(config):
    if name in _GLOBAL_PARAMS:
      hf_name, transpose = _GLOBAL_PARAMS[name]
      out[name] = _fetch(read, hf_name, transpose, expected_shapes[name], source)
    else:
      pattern, transpose = _LAYER_PARAMS[name]
      per_layer_shape = expected_shapes[name][1:]
      out[name] = np.stack([
          _fetch(read, pattern.format(i=i), transpose, per_layer_shape, source)
          for i in range(config.num_hidden_layers)])
  return out


def params_to_hf(config: ModelConfig, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """The inverse of hf_to_params: {HF name: [out, in] array}."""
  out = {}
  for name in param_names(config):
    value = params[name]
    if name in _GLOBAL_PARAMS:
      hf_name, transpose = _GLOBAL_PARAMS[name]
      out[hf_name] = np.ascontiguousarray(value.T if transpose else value)
    else:
      pattern, transpose = _LAYER_PARAMS[name]
      for i in range(config.num_hidden_layers):
        out[pattern.format(i=i)] = np.ascontiguousarray(value[i].T if transpose else value[i])
  return out


def gguf_name_to_hf(name: str) -> str | None:
  """'blk.3.attn_q.weight' -> 'model.layers.3.self_attn.q_proj.weight'; None if unknown."""
  if name in _GGUF_TO_HF:
    return _GGUF_TO_HF[name]
  m = re.fullmatch(r"blk\.(\d+)\.(\w+)\.(weight|bias)", name)
  if m and m.group(2) in _GGUF_LAYER_TO_HF:
    return f"model.layers.{m.group(1)}.{_GGUF_LAYER_TO_HF[m.group(2)]}.{m.group(3)}"
  return None


def unpermute_llama_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
  """Undoes llama.cpp's converter, which interleaves the two RoPE halves of each head.

  Works for weights [out, in] and biases [out].
  """
  rest = w.shape[1:]
  return (w.reshape(n_heads, w.shape[0] // n_heads // 2, 2, *rest)
          .swapaxes(1, 2).reshape(w.shape))


def _fetch(read, hf_name, transpose, shape, source):
  value = read(hf_name)
  if value is None:
    raise ValueError(f"{source}: missing tensor {hf_name!r}")
  if transpose:
    value = value.T
  if tuple(value.shape) != tuple(shape):
    stored = tuple(reversed(value.shape)) if transpose else tuple(value.shape)
    want = tuple(reversed(shape)) if transpose else tuple(shape)
    raise ValueError(f"{source}: tensor {hf_name!r} has shape {stored}, expected {want} "
                     "from the model config")
  return value
