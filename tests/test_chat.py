"""python -m amrsd.chat: the default model's greedy answer."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_chat_prints_the_default_models_greedy_answer():
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO), XLA_FLAGS="")
  out = subprocess.run([sys.executable, "-m", "amrsd.chat",
                        "--max_new_tokens=12"], env=env, cwd=REPO, capture_output=True,
                       text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.startswith("Q: What is 7 + 5? Answer with the number only.\nA: ")
  assert "12" in out.stdout.split("A: ", 1)[1]
