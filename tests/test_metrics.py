"""metrics.jsonl: a damaged line is skipped and named, the rows around it kept."""

import json

from amrsd.metrics import MetricsWriter, read_metrics


def test_a_damaged_line_is_skipped_not_the_rest(tmp_path, capsys):
  path = tmp_path / "metrics.jsonl"
  rows = [json.dumps({"step": s, "loss": 0.1 * s}) for s in range(4)]
  path.write_bytes(("\n".join(rows[:2]) + "\n{\"step\": 2, \"lo\xff\n" + rows[2] + "\n"
                    + rows[3] + "\n{\"step\": 4").encode("latin-1"))
  assert [r["step"] for r in read_metrics(str(path))] == [0, 1, 2, 3]
  err = capsys.readouterr().err
  assert f"{path}:3: skipping a damaged metrics line" in err
  assert f"{path}:6: skipping a damaged metrics line" in err   # the torn last line


def test_resume_truncation_keeps_history_around_a_damaged_line(tmp_path):
  path = tmp_path / "metrics.jsonl"
  path.write_text("\n".join([json.dumps({"step": 0}), "not json", json.dumps({"step": 1}),
                             json.dumps({"step": 2}), json.dumps({"step": 3})]) + "\n")
  MetricsWriter(str(tmp_path), resume_step=2).close()
  assert [r["step"] for r in read_metrics(str(path))] == [0, 1, 2]
