"""Training curves as PNG: python -m amrsd.plot WORKDIR [WORKDIR ...] [--out=DIR].

One figure per metric, one line per run, so several runs (methods, seeds) overlay.
"""

import os

from absl import app, flags

from amrsd.metrics import read_metrics

# Metric name -> axis label, in the order the figures are drawn.
CURVES = {
    "reward_mean": "training reward (mean)",
    "accuracy": "training accuracy",
    "eval_accuracy": "held-out accuracy",
    "response_length_mean": "response length (tokens)",
    "gate_fraction": "gate fraction (tokens with g > 0)",
    "cig_mean_pos": "CIG mean, A > 0 (nats)",
    "cig_mean_neg": "CIG mean, A < 0 (nats)",
    "anneal_strength": "modulation strength beta_k",
    "hint_leak_rate": "hint leak-reject rate",
    "loss": "loss",
    "entropy": "entropy (nats)",
    "time_sample": "sampling time per step (s)",
    "time_reflect": "reflection time per step (s)",
    "time_teacher": "teacher forward time per step (s)",
    "time_update": "update time per step (s)",
}


def plot_runs(workdirs, out_dir) -> list[str]:
  """Writes one PNG per metric found in any run's metrics.jsonl; returns the paths."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  runs = {os.path.basename(os.path.normpath(w)) or w:
          read_metrics(os.path.join(w, "metrics.jsonl")) for w in workdirs}
  os.makedirs(out_dir, exist_ok=True)
  written = []
  for key, label in CURVES.items():
    series = {name: [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
              for name, rows in runs.items()}
    series = {name: points for name, points in series.items() if points}
    if not series:
      continue
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, points in series.items():
      steps, values = zip(*points)
      ax.plot(steps, values, marker="o" if len(points) < 30 else None, ms=3, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    if len(series) > 1:
      ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out_dir, f"{key}.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)
  return written


def main(argv):
  workdirs = argv[1:]
  if not workdirs:
    raise app.UsageError("give one or more run folders: python -m amrsd.plot WORKDIR [...]")
  for w in workdirs:
    if not os.path.exists(os.path.join(w, "metrics.jsonl")):
      raise app.UsageError(f"{w} has no metrics.jsonl (is it a run's workdir?)")
  out = flags.FLAGS.out or os.path.join(workdirs[0], "plots")
  for path in plot_runs(workdirs, out):
    print(path)


if __name__ == "__main__":
  # Flags are defined only when run as a program: the trainer imports this module.
  flags.DEFINE_string("out", None, "Output folder (default: the first workdir's plots/).")
  app.run(main)
