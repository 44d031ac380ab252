"""Per-step metrics: workdir/metrics.jsonl, TensorBoard event files and, when a project is
set, Weights & Biases (amrsd.wandb_run); sampled groups: workdir/samples.jsonl and
TensorBoard text."""

import json
import math
import os
import sys


class MetricsWriter:
  """Appends one JSON object per step; on resume, drops rows past the resumed step (and
  damaged lines, see read_metrics), keeping every other row. The same holds for the
  sampled groups (write_samples) in samples.jsonl.

  wandb_project: also log the numeric metrics to this W&B project ("" = no W&B), under
  wandb_entity ("" = the default entity), with run_config as the run's config.
  """

  def __init__(self, workdir: str, *, resume_step: int = 0, enabled: bool = True,
               wandb_project: str = "", wandb_entity: str = "", run_config: dict | None = None):
    self.enabled = enabled
    self.path = os.path.join(workdir, "metrics.jsonl")
    self.samples_path = os.path.join(workdir, "samples.jsonl")
    self._tb = None
    self._wandb = None
    if not enabled:
      return
    os.makedirs(workdir, exist_ok=True)
    for path in (self.path, self.samples_path):
      _keep_until(path, resume_step)
    from tensorboardX import SummaryWriter
    self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"), flush_secs=10)
    if wandb_project:
      from amrsd import wandb_run
      self._wandb = wandb_run.start(workdir, project=wandb_project, entity=wandb_entity,
                                    config=run_config)

  def write(self, step: int, metrics: dict) -> None:
    if not self.enabled:
      return
    row = {"step": int(step)}
    row.update({k: _plain(v) for k, v in metrics.items()})
    _append(self.path, [row])
    scalars = {key: value for key, value in row.items()
               if key != "step" and isinstance(value, (int, float)) and math.isfinite(value)}
    for key, value in scalars.items():
      self._tb.add_scalar(key, value, step)
    if self._wandb is not None:
      self._wandb.log(scalars, step=int(step))

  def write_samples(self, step: int, groups: list[dict]) -> None:
    """One line per group (amrsd.trainer.sample_groups) in samples.jsonl, and the groups as
    TensorBoard text under "samples"."""
    if not self.enabled or not groups:
      return
    _append(self.samples_path, [{"step": int(step), **group} for group in groups])
    self._tb.add_text("samples", "\n\n".join(map(samples_markdown, groups)), step)

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()
    if self._wandb is not None:
      self._wandb.finish()
      self._wandb = None


def read_metrics(path: str) -> list[dict]:
  """Rows of a metrics.jsonl or samples.jsonl ([] when absent). A line that does not
  parse (a torn last line from a kill, a damaged line) is skipped with a note on stderr;
  the rows around it are kept."""
  if not os.path.exists(path):
    return []
  rows = []
  with open(path, "rb") as f:
    for number, line in enumerate(f, start=1):
      if not line.strip():
        continue
      try:
        row = json.loads(line)
      except ValueError as e:  # JSONDecodeError and UnicodeDecodeError alike
        row = e
      if isinstance(row, dict):
        rows.append(row)
      else:
        reason = row if isinstance(row, Exception) else f"a {type(row).__name__}, not an object"
        print(f"{path}:{number}: skipping a damaged metrics line ({reason})", file=sys.stderr)
  return rows


def samples_markdown(group: dict) -> str:
  """A sampled group as Markdown: the problem and gold, then a table of its rollouts."""
  cell = lambda text: str(text).replace("|", "\\|").replace("\n", "<br>")
  lines = [f"**problem** {cell(group['problem'])}", "",
           f"**gold** {cell(group['gold'])}", "",
           "| reward | feedback | hint | completion |", "|---|---|---|---|"]
  for r in group["rollouts"]:
    lines.append(f"| {r['reward']:g} | {cell(r['feedback'])} | {cell(r['hint'] or '-')} | "
                 f"{cell(r['completion'])} |")
  return "\n".join(lines)


def _keep_until(path: str, step: int) -> None:
  """Keeps the rows of a JSONL log up to `step` (and drops damaged lines)."""
  rows = [r for r in read_metrics(path) if r.get("step", 0) <= step]
  # Rewrite atomically so a kill here cannot lose the history of finished steps.
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    for row in rows:
      f.write(json.dumps(row) + "\n")
  os.replace(tmp, path)


def _append(path: str, rows: list[dict]) -> None:
  with open(path, "a") as f:
    for row in rows:
      f.write(json.dumps(row) + "\n")
    f.flush()
    os.fsync(f.fileno())


def _plain(value):
  if hasattr(value, "item"):
    value = value.item()
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)
  return value
