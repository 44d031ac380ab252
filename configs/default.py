"""The embedded default (same as `python -m amrsd.train` with no --config): AMR-SD on
SmolLM2-135M-Instruct, one-digit arithmetic, CPU, about 15 minutes on 2 cores."""

from amrsd.config import default_config


def get_config():
  return default_config()
