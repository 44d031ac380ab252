"""Architecture hyperparameters of the decoder family (Llama, SmolLM2, Qwen2, Qwen3)."""

import dataclasses
from typing import Any

# model_type values of config.json that this decoder implements, and how they differ.
SUPPORTED_ARCHITECTURES = ("llama", "qwen2", "qwen3")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Shape and numerics of one decoder.

  Field names follow the Hugging Face config.json keys they come from.
  """
  model_type: str              # one of SUPPORTED_ARCHITECTURES
  vocab_size: int
  hidden_size: int             # model width D
  intermediate_size: int       # SwiGLU width F
  num_hidden_layers: int
  num_attention_heads: int     # query heads H
  num_key_value_heads: int     # key/value heads K (H % K == 0, grouped-query attention)
  head_dim: int
  rms_norm_eps: float = 1e-6
  rope_theta: float = 10000.0
  # Llama 3 frequency rescaling: {"rope_type": "llama3", "factor", "low_freq_factor",
  # "high_freq_factor", "original_max_position_embeddings"}; None for plain RoPE.
  rope_scaling: tuple[tuple[str, Any], ...] | None = None
  max_position_embeddings: int = 8192
  tie_word_embeddings: bool = False
  attention_bias: bool = False  # q/k/v projection biases (Qwen2)
  qk_norm: bool = False         # per-head RMSNorm of q and k before RoPE (Qwen3)
  bos_token_id: int | None = None
  eos_token_id: int | tuple[int, ...] | None = None
  pad_token_id: int | None = None

  def __post_init__(self):
    if self.model_type not in SUPPORTED_ARCHITECTURES:
      raise ValueError(f"unsupported model_type {self.model_type!r}; supported: "
                       f"{', '.join(SUPPORTED_ARCHITECTURES)}")
    if self.num_attention_heads % self.num_key_value_heads:
      raise ValueError(f"num_attention_heads={self.num_attention_heads} is not a multiple "
                       f"of num_key_value_heads={self.num_key_value_heads}")

  @property
  def rope_scaling_dict(self) -> dict[str, Any] | None:
    return dict(self.rope_scaling) if self.rope_scaling else None

  @classmethod
  def from_hf(cls, hf: dict[str, Any], *, source: str = "config.json") -> "ModelConfig":
    """Builds the config from a parsed Hugging Face config.json; `source` names it in errors."""
    model_type = hf.get("model_type")
    if model_type not in SUPPORTED_ARCHITECTURES:
      raise ValueError(f"{source}: unknown architecture model_type={model_type!r} "
                       f"(architectures={hf.get('architectures')}); amrsd supports "
                       f"{', '.join(SUPPORTED_ARCHITECTURES)}")
    try:
      heads = hf["num_attention_heads"]
      rope_scaling = hf.get("rope_scaling") or None
      rope_theta = hf.get("rope_theta")
      if rope_theta is None:  # transformers 5 nests it in rope_parameters
        rope_theta = (hf.get("rope_parameters") or {}).get("rope_theta", 10000.0)
      if rope_scaling is None and (hf.get("rope_parameters") or {}).get("rope_type") == "llama3":
        rope_scaling = hf["rope_parameters"]
      if rope_scaling is not None:
        rope_type = rope_scaling.get("rope_type", rope_scaling.get("type"))
        if rope_type in (None, "default"):
          rope_scaling = None
        elif rope_type != "llama3":
          raise ValueError(f"{source}: rope_scaling type {rope_type!r} is not supported "
                           "(supported: default, llama3)")
        else:
          keys = ("factor", "low_freq_factor", "high_freq_factor",
                  "original_max_position_embeddings")
          rope_scaling = (("rope_type", "llama3"),) + tuple((k, rope_scaling[k]) for k in keys)
      eos = hf.get("eos_token_id")
      return cls(
          model_type=model_type,
          vocab_size=hf["vocab_size"],
          hidden_size=hf["hidden_size"],
          intermediate_size=hf["intermediate_size"],
          num_hidden_layers=hf["num_hidden_layers"],
          num_attention_heads=heads,
          num_key_value_heads=hf.get("num_key_value_heads") or heads,
          head_dim=hf.get("head_dim") or hf["hidden_size"] // heads,
          rms_norm_eps=hf.get("rms_norm_eps", 1e-6),
          rope_theta=float(rope_theta),
          rope_scaling=rope_scaling,
          max_position_embeddings=hf.get("max_position_embeddings", 8192),
          tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
          attention_bias=bool(hf.get("attention_bias", model_type == "qwen2")),
          qk_norm=model_type == "qwen3",
          bos_token_id=hf.get("bos_token_id"),
          eos_token_id=tuple(eos) if isinstance(eos, list) else eos,
          pad_token_id=hf.get("pad_token_id"),
      )
    except KeyError as e:
      raise ValueError(f"{source}: required field {e.args[0]!r} is missing") from None

  def to_hf(self) -> dict[str, Any]:
    """The config.json that transformers reads back into the same architecture."""
    arch = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM",
            "qwen3": "Qwen3ForCausalLM"}[self.model_type]
    hf = {
        "architectures": [arch],
        "model_type": self.model_type,
        "vocab_size": self.vocab_size,
        "hidden_size": self.hidden_size,
        "intermediate_size": self.intermediate_size,
        "num_hidden_layers": self.num_hidden_layers,
        "num_attention_heads": self.num_attention_heads,
        "num_key_value_heads": self.num_key_value_heads,
        "head_dim": self.head_dim,
        "rms_norm_eps": self.rms_norm_eps,
        "rope_theta": self.rope_theta,
        "rope_scaling": self.rope_scaling_dict,
        "max_position_embeddings": self.max_position_embeddings,
        "tie_word_embeddings": self.tie_word_embeddings,
        "hidden_act": "silu",
        "torch_dtype": "float32",
        "bos_token_id": self.bos_token_id,
        "eos_token_id": list(self.eos_token_id) if isinstance(self.eos_token_id, tuple)
                        else self.eos_token_id,
        "pad_token_id": self.pad_token_id,
    }
    if self.model_type == "llama":
      hf["attention_bias"] = self.attention_bias
      hf["mlp_bias"] = False
    return hf
