#!/usr/bin/env bash
# Sets up .venv and runs the test suite (JAX on CPU, 8 fake devices; see tests/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
# Optional .venv-ref (Python 3.11, transformers + PyTorch CPU) for the transformers round trip in
# tests/models; torch only from a local wheel (pip find-links), never downloaded. About 1 minute.
if [ ! -x .venv-ref/bin/python ] && command -v python3.11 >/dev/null 2>&1; then
  python3.11 -m venv .venv-ref && .venv-ref/bin/python -m pip install -q --no-index --no-deps torch==2.13.0 \
    && .venv-ref/bin/python -m pip install -q torch==2.13.0 transformers==5.24.0 accelerate==1.15.0 \
       gguf==0.19.0 safetensors==0.8.0 \
    || { echo "test.sh: no .venv-ref (needs a local torch 2.13.0 wheel); its tests skip" >&2; rm -rf .venv-ref; }
fi
exec .venv/bin/python -m pytest tests "$@"
