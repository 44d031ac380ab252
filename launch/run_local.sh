#!/usr/bin/env bash
# Sets up .venv and runs the default job on this machine's CPU. Extra arguments pass through.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
export JAX_PLATFORMS=${JAX_PLATFORMS:-cpu}
exec .venv/bin/python -m amrsd.train "$@"
