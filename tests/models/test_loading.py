"""models.load: errors that name the file and the tensor, GGUF files, loading onto a mesh."""

import json
import os
import re
import shutil

import gguf
import jax
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from amrsd import models
from tests.models.conftest import checkpoint_dir, forward, max_diff_on_real_tokens, reference


def test_unknown_architecture_names_the_config_file(tmp_path):
  folder = copy_checkpoint("llama_tied", tmp_path)
  config = json.loads((folder / "config.json").read_text())
  config["model_type"] = "gpt2"
  (folder / "config.json").write_text(json.dumps(config))
  with pytest.raises(ValueError, match="gpt2") as error:
    models.load(folder)
  assert str(folder / "config.json") in str(error.value)
  assert "llama" in str(error.value)  # lists what is supported


def test_missing_tensor_names_the_file_and_the_tensor(tmp_path):
  folder = copy_checkpoint("qwen2", tmp_path)
  tensors = load_file(folder / "model.safetensors")
  del tensors["model.layers.1.self_attn.k_proj.bias"]
  save_file(tensors, folder / "model.safetensors")
  with pytest.raises(ValueError, match=r"missing tensor 'model\.layers\.1\.self_attn\.k_proj"
                                       r"\.bias'") as error:
    models.load(folder)
  assert str(folder / "model.safetensors") in str(error.value)


def test_shape_mismatch_names_the_tensor_and_both_shapes(tmp_path):
  folder = copy_checkpoint("llama3_untied", tmp_path)
  tensors = load_file(folder / "model.safetensors")
  name = "model.layers.0.mlp.up_proj.weight"  # [128, 64]
  tensors[name] = tensors[name][:100]
  save_file(tensors, folder / "model.safetensors")
  with pytest.raises(ValueError) as error:
    models.load(folder)
  message = str(error.value)
  assert str(folder / "model.safetensors") in message and repr(name) in message
  assert "(100, 64)" in message and "(128, 64)" in message


def test_unsupported_gguf_quantization_names_the_file_and_the_tensor(tmp_path):
  path = tmp_path / "q8_1.gguf"
  # Q8_1 is a real GGUF type (llama.cpp's activation format) that gguf cannot dequantize.
  write_gguf(path, "llama_tied", quantize={"blk.1.ffn_up.weight": gguf.GGMLQuantizationType.Q8_1})
  with pytest.raises(ValueError, match="Q8_1") as error:
    models.load(path)
  assert str(path) in str(error.value) and "'blk.1.ffn_up.weight'" in str(error.value)


def test_truncated_gguf_names_the_file_and_its_size(tmp_path):
  path = tmp_path / "cut.gguf"
  write_gguf(path, "llama_tied")
  path.write_bytes(path.read_bytes()[:-1000])
  with pytest.raises(ValueError, match=rf"{re.escape(str(path))}: not a readable GGUF file "
                                       r"\(ValueError: .*; the file has \d+ bytes\): it may be "
                                       "truncated"):
    models.load(path)


def test_nonexistent_path_is_named(tmp_path):
  path = tmp_path / "no_such_model"
  with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
    models.load(path)


@pytest.mark.parametrize("name", ["llama_tied", "qwen2"])
def test_gguf_file_loads_like_the_hf_folder(tmp_path, name, fixture_models):
  # The GGUF converter's Q/K row permutation (llama only) must be undone on load.
  path = tmp_path / f"{name}.gguf"
  write_gguf(path, name)
  model, tokenizer = models.load(path)
  ref = reference(name)
  logits = forward(model, ref["input_ids"], ref["attention_mask"])
  folder_logits = forward(fixture_models[name][0], ref["input_ids"], ref["attention_mask"])
  assert max_diff_on_real_tokens(logits, folder_logits, ref["attention_mask"]) <= 1e-5
  assert tokenizer.convert_tokens_to_ids(tokenizer.eos_token) == model.config.eos_token_id


@pytest.mark.parametrize("name", ["llama3_untied", "qwen3"])
def test_loading_onto_a_mesh_gives_the_unsharded_logits(name, fixture_models):
  mesh = jax.make_mesh((2, 2, 2), ("data", "fsdp", "tensor"),
                       axis_types=(jax.sharding.AxisType.Auto,) * 3)
  model, _ = models.load(checkpoint_dir(name), mesh=mesh)
  embed = model.embed[...]
  assert embed.sharding.mesh.shape == mesh.shape
  assert embed.sharding.spec == jax.sharding.PartitionSpec("tensor", "fsdp")
  assert len(embed.addressable_shards) == 8
  ref = reference(name)
  with jax.set_mesh(mesh):
    sharded = forward(model, ref["input_ids"], ref["attention_mask"])
  unsharded = forward(fixture_models[name][0], ref["input_ids"], ref["attention_mask"])
  assert max_diff_on_real_tokens(sharded, unsharded, ref["attention_mask"]) <= 1e-4


def copy_checkpoint(name, tmp_path):
  return shutil.copytree(checkpoint_dir(name), tmp_path / name)


def write_gguf(path, name, quantize=None):
  """Writes fixture checkpoint `name` as a llama.cpp-style GGUF (float32 tensors).

  quantize: GGUF tensor name -> a quantization type; that tensor is stored as zero blocks of it.
  """
  folder = checkpoint_dir(name)
  config = json.loads(open(os.path.join(folder, "config.json")).read())
  tokens = json.loads(open(os.path.join(folder, "tokenizer.json")).read())["model"]["vocab"]
  arch = config["model_type"]
  heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
  writer = gguf.GGUFWriter(str(path), arch)
  writer.add_block_count(config["num_hidden_layers"])
  writer.add_context_length(config["max_position_embeddings"])
  writer.add_embedding_length(config["hidden_size"])
  writer.add_feed_forward_length(config["intermediate_size"])
  writer.add_head_count(heads)
  writer.add_head_count_kv(kv_heads)
  writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
  writer.add_rope_freq_base(config["rope_parameters"]["rope_theta"])
  writer.add_tokenizer_model("gpt2")
  writer.add_token_list(sorted(tokens, key=tokens.get))
  writer.add_token_types([gguf.TokenType.NORMAL] * len(tokens))
  writer.add_token_scores([0.0] * len(tokens))  # no merges: single bytes only
  writer.add_bos_token_id(config["bos_token_id"])
  writer.add_eos_token_id(config["eos_token_id"])
  writer.add_pad_token_id(config["pad_token_id"])
  for hf_name, value in sorted(load_file(os.path.join(folder, "model.safetensors")).items()):
    gguf_name = gguf_tensor_name(hf_name)
    if arch == "llama" and ".q_proj." in hf_name:
      value = permute_rope_rows(value, heads)
    elif arch == "llama" and ".k_proj." in hf_name:
      value = permute_rope_rows(value, kv_heads)
    kind = (quantize or {}).get(gguf_name)
    if kind is None:
      writer.add_tensor(gguf_name, value.astype(np.float32))
    else:
      block, size = gguf.GGML_QUANT_SIZES[kind]
      blocks = np.zeros((value.shape[0], value.shape[1] // block * size), np.uint8)
      writer.add_tensor(gguf_name, blocks, raw_dtype=kind)
  writer.write_header_to_file()
  writer.write_kv_data_to_file()
  writer.write_tensors_to_file()
  writer.close()


def gguf_tensor_name(hf_name):
  """llama.cpp's tensor names, written out here independently of amrsd.models.params."""
  fixed = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight":
           "output_norm.weight", "lm_head.weight": "output.weight"}
  if hf_name in fixed:
    return fixed[hf_name]
  layer, rest = re.fullmatch(r"model\.layers\.(\d+)\.(.+)", hf_name).groups()
  parts = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q",
           "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
           "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
           "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
  module, kind = rest.rsplit(".", 1)
  return f"blk.{layer}.{parts[module]}.{kind}"


def permute_rope_rows(w, n_heads):
  """What llama.cpp's HF converter does to llama Q/K rows: within each head, the two
  rotate-half halves are interleaved (row i of half 0, row i of half 1, ...)."""
  half = w.shape[0] // n_heads // 2
  return w.reshape(n_heads, 2, half, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
