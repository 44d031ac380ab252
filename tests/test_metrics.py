"""metrics.jsonl and samples.jsonl: a damaged line is skipped and named, the rows around
it kept; a resume drops the rows past its step."""

import json

from amrsd.metrics import MetricsWriter, read_metrics, samples_markdown


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


def _group(problem, completion="", hint=None):
  return {"group": 0, "problem": problem, "gold": "4",
          "rollouts": [{"completion": completion, "reward": 0.0, "feedback": "wrong",
                        "clipped": False, "hint": hint}]}


def test_samples_are_appended_per_step_and_cut_back_on_resume(tmp_path):
  writer = MetricsWriter(str(tmp_path))
  for step in (1, 2, 3):
    writer.write_samples(step, [_group(f"problem {step}")])
  writer.write_samples(4, [])  # a step that logged no samples writes nothing
  writer.close()
  path = tmp_path / "samples.jsonl"
  assert [(r["step"], r["problem"]) for r in read_metrics(str(path))] == [
      (1, "problem 1"), (2, "problem 2"), (3, "problem 3")]
  writer = MetricsWriter(str(tmp_path), resume_step=2)
  writer.write_samples(3, [_group("again")])
  writer.close()
  assert [(r["step"], r["problem"]) for r in read_metrics(str(path))] == [
      (1, "problem 1"), (2, "problem 2"), (3, "again")]
  assert list(tmp_path.glob("tensorboard/events.out.tfevents.*"))


def test_samples_markdown_keeps_table_cells_whole():
  text = samples_markdown(_group("2 + 2?", completion="a | b\nso 5", hint="Recheck | carry"))
  lines = text.splitlines()
  assert lines[0] == "**problem** 2 + 2?" and "**gold** 4" in lines
  assert lines[-1] == "| 0 | wrong | Recheck \\| carry | a \\| b<br>so 5 |"
