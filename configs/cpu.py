"""CPU recipe for one method: --config=configs/cpu.py:METHOD (grpo|rlsd|sdpo|opsd|amrsd).

SmolLM2-135M-Instruct on one-digit arithmetic (levels 1-2, the embedded default's task),
8 prompts x 8 samples, 16 new tokens. Every method sees the same data order and the same
rollout random stream, so runs with the same seed are paired.
"""

from amrsd.config import METHODS, default_config


def get_config(method="amrsd"):
  if method not in METHODS:
    raise ValueError(f"configs/cpu.py:{method}: choose one of {', '.join(METHODS)}")
  c = default_config()
  c.algorithm.name = method
  c.workdir = f"runs/cpu_{method}"
  return c
