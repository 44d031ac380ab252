#!/usr/bin/env bash
# Sets up .venv and runs the test suite (JAX on CPU, 8 fake devices; see tests/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
exec .venv/bin/python -m pytest tests "$@"
