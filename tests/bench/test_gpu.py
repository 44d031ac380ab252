"""amrsd.bench.gpu --size=tiny: every part runs, without the verifier libraries."""

import json
import subprocess
import sys

from tests.conftest import REPO

# The accelerator image has the array stack but not math-verify: the benchmark (model, train
# step, decode) must not import it, which a None entry in sys.modules turns into an error.
RUN = """
import sys
sys.modules["math_verify"] = None
from absl import app
from amrsd.bench import gpu
app.run(gpu.main, argv=["gpu", "--size=tiny", "--attention=xla", "--out=" + sys.argv[1]])
"""


def test_tiny_run_reports_every_part_without_math_verify(tmp_path):
  done = subprocess.run([sys.executable, "-c", RUN, str(tmp_path)], cwd=REPO, text=True,
                        capture_output=True, env={"JAX_PLATFORMS": "cpu", "PATH": ""},
                        timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  report = json.loads((tmp_path / "gpu_bench.json").read_text())
  assert report["matmul_tflops"] > 0 and report["copy_gbs"] > 0
  rows = {(r["model"], r["part"], r["option"]): r for r in report["results"]}
  assert set(rows) == {(m, p, o) for m in ("tiny-a", "tiny-b")
                       for p, o in (("forward", "xla"), ("step", "xla"), ("decode", "stacked"),
                                    ("decode", "split"))}
  for key, row in rows.items():
    assert "error" not in row, (key, row["error"])
    assert row["tokens_per_s"] > 0, key
  assert all(0 < rows[m, p, "xla"]["of_matmul"] for m in ("tiny-a", "tiny-b")
             for p in ("forward", "step"))
