"""The package as users install it: a wheel built from the checkout carries the
evaluation sets, points nowhere outside itself, and loads every set by name when
imported away from any checkout; pyproject's ranges admit the pins of requirements.txt."""

import os
import pathlib
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile

from packaging.requirements import Requirement

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_the_pinned_requirements_satisfy_the_declared_ranges():
  project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
  declared = [Requirement(r) for r in project["dependencies"]]
  declared += [Requirement(r) for extra in project["optional-dependencies"].values() for r in extra]
  pins = {}
  for line in (REPO / "requirements.txt").read_text().splitlines():
    if line.strip() and not line.startswith("#"):
      pinned = Requirement(line)
      pins[pinned.name] = next(iter(pinned.specifier), None)
  for requirement in declared:
    assert requirement.name in pins, f"{requirement.name} is declared but not in the lock"
    pin = pins[requirement.name]
    if pin is not None:
      assert requirement.specifier.contains(pin.version), f"{requirement} excludes the lock's {pin}"
  assert set(pins) - {r.name for r in declared} <= {"setuptools"}


OUTSIDE = re.compile(r"\.\./shared|shared/data|shared/docs")


def test_nothing_in_the_product_points_outside_the_checkout():
  paths = [REPO / "README.md", REPO / "pyproject.toml"]
  for folder in ("amrsd", "configs", "launch"):
    paths += [p for p in (REPO / folder).rglob("*") if p.suffix in (".py", ".sh", ".md", ".toml")]
  assert not [str(p) for p in paths if OUTSIDE.search(p.read_text())]


def test_the_wheel_ships_the_sets_and_loads_them_away_from_the_checkout(tmp_path):
  # Built from a copy of the package sources, so no build/ folder lands in the checkout.
  source = tmp_path / "src"
  shutil.copytree(REPO / "amrsd", source / "amrsd",
                  ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
  for name in ("pyproject.toml", "README.md"):
    shutil.copy(REPO / name, source / name)
  # No build isolation: setuptools comes from the lock (requirements.txt), not the network.
  built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                          "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source)],
                         capture_output=True, text=True)
  assert built.returncode == 0, built.stderr[-2000:]
  (wheel,) = (tmp_path / "dist").glob("amrsd-*.whl")
  with zipfile.ZipFile(wheel) as archive:
    names = archive.namelist()
    texts = [archive.read(n).decode() for n in names if not n.endswith(".gz")]
  shipped = [n for n in names if n.startswith("amrsd/data/benchmarks/") and n.endswith(".gz")]
  assert len(shipped) == 12
  assert "amrsd/data/benchmarks/README.md" in names
  assert "amrsd/chat_templates/chatml_append.jinja" in names
  assert not [t for t in texts if OUTSIDE.search(t)]

  subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                  "--target", str(tmp_path / "site"), str(wheel)], check=True, capture_output=True)
  away = tmp_path / "elsewhere"
  away.mkdir()
  script = ("import amrsd, amrsd.data as d, amrsd.config as c; print(amrsd.__file__); "
            "print(*(len(d.load_benchmark(n)) for n in d.BENCHMARKS)); "
            "print(c.chat_template_path('chatml_append'))")
  result = subprocess.run([sys.executable, "-P", "-c", script], cwd=away, check=True,
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(tmp_path / "site")})
  location, counts, template = result.stdout.splitlines()
  assert location.startswith(str(tmp_path / "site"))
  assert template.startswith(str(tmp_path / "site")) and os.path.isfile(template)
  assert counts == "30 30 40 30 30 500 1319 50 210 94 80 68"
