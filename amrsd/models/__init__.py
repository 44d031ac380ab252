"""Decoder models: definition, checkpoint loading and export."""

from amrsd.models.config import ModelConfig, SUPPORTED_ARCHITECTURES
from amrsd.models.decoder import Decoder, KVCache, LoRAParam, init_cache, positions_from_mask
from amrsd.models.export import save_hf
from amrsd.models.loading import build_model, default_model_path, load

__all__ = ["ModelConfig", "SUPPORTED_ARCHITECTURES", "Decoder", "KVCache", "LoRAParam", "init_cache",
           "positions_from_mask", "save_hf", "build_model", "default_model_path", "load"]
