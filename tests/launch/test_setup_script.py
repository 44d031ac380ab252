"""launch/setup.sh: installs the lock, the model wheel and amrsd (editable, no deps), and
reinstalls only when requirements.txt or pyproject.toml changed. Python and pip are
stand-in scripts that record their arguments, so the test installs nothing."""

import os
import shutil
import stat
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Records its arguments; `-m venv DIR` also creates DIR/bin/python as a copy of itself.
RECORDER = """#!/usr/bin/env bash
echo "$*" >> "$CALLS"
if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin" && cp "$0" "$3/bin/python"; fi
"""


def executable(path, text):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(text)
  path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_installs_the_lock_then_amrsd_and_reinstalls_when_either_file_changes(tmp_path):
  checkout = tmp_path / "checkout"
  (checkout / "launch").mkdir(parents=True)
  shutil.copy(os.path.join(REPO, "launch", "setup.sh"), checkout / "launch")
  for name in ("requirements.txt", "pyproject.toml"):
    shutil.copy(os.path.join(REPO, name), checkout / name)
  executable(tmp_path / "bin" / "python3.12", RECORDER)
  calls = tmp_path / "calls.txt"
  env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "CALLS": str(calls)}

  def setup():
    calls.write_text("")
    subprocess.run(["bash", "launch/setup.sh"], cwd=checkout, env=env, check=True,
                   capture_output=True, timeout=30)
    # Without the interpreter's version check, which setup.sh runs before choosing it.
    return [c for c in calls.read_text().splitlines() if not c.startswith("-c ")]

  first = setup()
  assert first[0] == "-m venv .venv"
  assert first.index("-m pip install -q -r requirements.txt") < first.index(
      "-m pip install -q --no-deps --no-build-isolation -e .")
  assert setup() == []  # nothing changed: nothing runs
  with open(checkout / "pyproject.toml", "a") as f:
    f.write("\n# changed\n")
  assert "-m pip install -q --no-deps --no-build-isolation -e ." in setup()
  assert setup() == []
  with open(checkout / "requirements.txt", "a") as f:
    f.write("# changed\n")
  assert "-m pip install -q -r requirements.txt" in setup()
