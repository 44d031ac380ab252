"""The comparison report: figures and out_dir/report.md of amrsd.compare.

Everything is read back from the files a comparison leaves on disk (metrics.jsonl,
final_eval.json, heldout_scores.json per run) through amrsd.compare_stats, so the report
can be redrawn at any time, also from a partial comparison:
python -m amrsd.compare --config=... --stage=report.
"""

import os

import numpy as np

from amrsd.compare_plan import labels, plan
from amrsd.compare_stats import (accuracy_rows, collapse, collect, moving_average,
                                 paired_difference_ci, run_wall_seconds, score_matrix,
                                 half_means, seed_band, steps_to_reach, wilson)

PHASES = ("time_sample", "time_verify", "time_reflect", "time_teacher", "time_update")


def _plt():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


COLORS = {"grpo": "tab:gray", "rlsd": "tab:blue", "sdpo": "tab:green", "opsd": "tab:orange",
          "amrsd": "tab:red"}
VARIANT_COLORS = ("tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "black")


def label_colors(names) -> dict:
  """A color per report row: the methods' own, the variants' in their order."""
  variants = [n for n in names if n not in COLORS]
  return {**COLORS, **{n: VARIANT_COLORS[i % len(VARIANT_COLORS)] for i, n in enumerate(variants)}}


def plot_bands(data, keys, path, title=None) -> bool:
  """One panel per (key, label), a line per method (mean over seeds) with a +-1 std band;
  False (nothing written) when no run logged any key."""
  plt = _plt()
  fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.2), squeeze=False)
  drawn = False
  colors = label_colors(data["methods"])
  for ax, (key, label) in zip(axes[0], keys):
    for m, entry in data["methods"].items():
      runs = entry["main"] or entry["partial"]
      steps, mean, std = seed_band(runs, key)
      if not len(steps):
        continue
      drawn = True
      ax.plot(steps, mean, marker="o" if len(steps) < 25 else None, ms=3, color=colors[m],
              label=f"{m} (n={len(runs)})")
      ax.fill_between(steps, mean - std, mean + std, color=colors[m], alpha=0.15, lw=0)
    ax.set_xlabel("step")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
  if not drawn:
    plt.close(fig)
    return False
  axes[0][0].legend(fontsize=7)
  if title:
    fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)
  return True


def plot_final(rows, base, path):
  plt = _plt()
  colors = label_colors([r["method"] for r in rows])
  fig, ax = plt.subplots(figsize=(6, 3.2))
  x = np.arange(len(rows))
  for offset, kind, label in ((-0.18, "greedy", "greedy"), (0.18, "sampled", "sampled avg@k")):
    mean = np.array([r[kind][0] for r in rows])
    err = np.array([[r[kind][0] - r[kind][1], r[kind][2] - r[kind][0]] for r in rows]).T
    ax.bar(x + offset, mean, 0.36, yerr=err, capsize=3, label=label,
           alpha=0.9 if kind == "greedy" else 0.5,
           color=[colors[r["method"]] for r in rows])
  if base is not None:
    if base["greedy"] is not None:
      ax.axhline(np.mean(base["greedy"]), color="k", ls="--", lw=1, label="base model, greedy")
    ax.axhline(np.mean(base["sampled"]), color="k", ls=":", lw=1, label="base model, sampled")
  ax.set_xticks(x, [r["method"] for r in rows])
  ax.set_ylabel("held-out accuracy")
  ax.legend(fontsize=7)
  ax.grid(alpha=0.3, axis="y")
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)


def plot_wall(timing, path):
  plt = _plt()
  fig, ax = plt.subplots(figsize=(6, 3.2))
  methods = list(timing)
  bottom = np.zeros(len(methods))
  for phase in PHASES + ("other",):
    values = np.array([timing[m][phase] for m in methods])
    ax.bar(methods, values, bottom=bottom, label=phase.replace("time_", ""))
    bottom += values
  ax.set_ylabel("seconds per step (mean)")
  ax.legend(fontsize=7)
  ax.grid(alpha=0.3, axis="y")
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)


def plot_long(curves, margin, path):
  """curves: {method: (steps, held-out accuracy, train steps, smoothed train reward)}."""
  plt = _plt()
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
  for m, (steps, acc, tsteps, reward) in curves.items():
    axes[0].plot(steps, acc, marker="o", ms=3, color=COLORS.get(m), label=m)
    best = int(np.argmax(acc))
    axes[0].hlines(acc[best] - margin, steps[best], steps[-1], colors=COLORS.get(m), lw=0.8,
                   linestyles=":")
    axes[1].plot(tsteps, reward, color=COLORS.get(m), label=m)
  axes[0].set_ylabel(f"held-out accuracy (greedy)\ndotted: best - {margin:g}")
  axes[1].set_ylabel("training reward (trailing mean of 4)")
  for ax in axes:
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)


def _fmt_ci(ci):
  return f"{ci[0]:.3f} [{ci[1]:.3f}, {ci[2]:.3f}]"


def _run_summary(cfg) -> str:
  r = cfg.run
  trainable = r.train.trainable + (f" (top {r.train.top_layers} blocks)"
                                   if r.train.trainable == "top_layers" else "")
  task = r.data.task + (f" {dict(r.data.task_args)}" if r.data.task != "jsonl" else
                        f" {r.data.train_path}")
  return "\n".join([
      f"- model: {r.model.path or 'SmolLM2-135M-Instruct (default GGUF)'}, {r.model.dtype}, "
      f"trained: {trainable}, lr {r.train.learning_rate:g}",
      f"- task: {task}; verifier {r.data.verifier}",
      f"- {r.rollout.prompts_per_step} prompts x {r.rollout.group_size} samples per step, "
      f"{r.rollout.max_new_tokens} new tokens, temperature {r.rollout.temperature:g}; hints "
      f"{r.reflection.hint_max_tokens} tokens per {r.reflection.hint_granularity}",
      f"- {cfg.steps} steps x seeds {tuple(cfg.seeds)} per method; long-horizon runs to "
      f"{cfg.long_steps} steps on seeds {tuple(cfg.long_seeds)}; anneal horizon "
      f"{r.algorithm.anneal_steps if r.algorithm.anneal_steps > 0 else max(1, cfg.steps // 2)} "
      f"steps for all runs (RLSD's own: {r.algorithm.rlsd_anneal_steps})",
      f"- identical across methods: model, data order and rollout random streams per seed "
      f"(keyed on (seed, step)), group size, token budget, optimizer; only algorithm.name "
      "differs"] + [
      f"- variant {name}: {v.method} with {_fields(v.run.to_dict())} on seeds "
      f"{tuple(v.seeds)} (the main runs' data order and rollout streams)"
      for name, v in cfg.variants.items() if v.seeds])


def _fields(values: dict, prefix: str = "") -> str:
  """{"a": {"b": 1}} -> "a.b=1"."""
  return ", ".join(_fields(v, f"{prefix}{k}.") if isinstance(v, dict) else f"{prefix}{k}={v!r}"
                   for k, v in values.items())


def accuracy_section(cfg, data, set_name, fig_dir) -> list[str]:
  """Report lines (table, paired differences to GRPO, verdict, figure) for one set."""
  e, b = cfg.final_eval, cfg.bootstrap
  rows = accuracy_rows(cfg, data, set_name)
  if not rows:
    return []
  greedy = "greedy" in rows[0]
  n = rows[0]["sampled_matrix"].shape[1]
  where = ("the task's held-out split (drawn with seed "
           f"{e.seed}; disjoint from training by content)" if set_name == "heldout" else
           f"benchmark {set_name}")
  lines = [f"### {set_name}", "",
           f"Each final checkpoint answers the same {n} problems of {where}"
           f"{' greedily and' if greedy else ''} with {e.samples} samples at temperature "
           f"{e.temperature:g} (sampled = avg@{e.samples}). 95 % CI: percentile bootstrap "
           f"({b.resamples} resamples) over seeds and problems (each resample draws seeds with "
           "replacement and one problem multiset shared by the seeds). Wilson: the pooled "
           "greedy proportion over seeds x problems, which ignores seed-to-seed variance. With "
           "few seeds the bootstrap's seed term is coarse.", ""]
  head = "| method | seeds | "
  head += "greedy [95 % CI] | greedy per seed | greedy Wilson | " if greedy else ""
  head += f"sampled avg@{e.samples} [95 % CI] | sampled per seed |"
  lines += [head, "|" + "---|" * (head.count(" | ") + 1)]
  base = data["base"]["sets"].get(set_name) if data["base"] else None
  if base is not None:
    cells = ["base model", "-"]
    if greedy:
      g = np.asarray(base["greedy"], float)
      lo, hi = wilson(g.sum(), g.size)
      cells += [f"{g.mean():.3f}", "-", f"[{lo:.3f}, {hi:.3f}]"]
    cells += [f"{score_matrix([base], 'sampled').mean():.3f}", "-"]
    lines.append("| " + " | ".join(cells) + " |")
  for r in rows:
    cells = [r["method"], str(r["seeds"])]
    if greedy:
      cells += [_fmt_ci(r["greedy"]), ", ".join(f"{v:.3f}" for v in r["greedy_per_seed"]),
                f"[{r['wilson'][0]:.3f}, {r['wilson'][1]:.3f}]"]
    cells += [_fmt_ci(r["sampled"]), ", ".join(f"{v:.3f}" for v in r["sampled_per_seed"])]
    lines.append("| " + " | ".join(cells) + " |")
  figure = f"final_accuracy_{set_name}.png"
  plot_final(rows, base, os.path.join(fig_dir, figure))
  lines += ["", f"![final accuracy on {set_name}](figures/{figure})", ""]
  kinds = ("greedy", "sampled") if greedy else ("sampled",)
  # Each row against GRPO, and each variant against the method it varies.
  by_label = {r["method"]: r for r in rows}
  pairs = [(r["method"], "grpo") for r in rows if r["method"] != "grpo"]
  pairs += [(name, v.method) for name, v in cfg.variants.items() if name in by_label]
  pairs = [(a, b_) for a, b_ in pairs if b_ in by_label and
           set(by_label[a]["seed_ids"]) & set(by_label[b_]["seed_ids"])]
  to_grpo, to_base = {}, {}
  if pairs:
    lines += ["Paired differences over the seeds both finished (same seeds, same rollout "
              "streams, same problems; bootstrap as above):", "",
              "| comparison | seeds | " + " | ".join(f"{k} diff [95 % CI]" for k in kinds) + " |",
              "|---|---|" + "---|" * len(kinds)]
    for a, b_ in pairs:
      r, reference = by_label[a], by_label[b_]
      common = [s for s in r["seed_ids"] if s in reference["seed_ids"]]
      mine = [r["seed_ids"].index(s) for s in common]
      theirs = [reference["seed_ids"].index(s) for s in common]
      diffs = [paired_difference_ci(r[k + "_matrix"][mine], reference[k + "_matrix"][theirs],
                                    resamples=b.resamples, seed=b.seed) for k in kinds]
      if b_ == "grpo":
        to_grpo[a] = diffs[0]
      else:
        to_base[f"{a} - {b_}"] = diffs[0]
      lines.append(f"| {a} - {b_} | {len(common)} | " + " | ".join(map(_fmt_ci, diffs)) + " |")
    lines += [""]
  key = kinds[0]
  methods = [r for r in rows if r["method"] in cfg.methods]  # the verdict is between methods
  amrsd = next((r for r in methods if r["method"] == "amrsd"), None)
  if amrsd is not None:
    best = max(methods, key=lambda r: r[key][0])
    tied = [r["method"] for r in methods if r is not amrsd and r[key][0] == amrsd[key][0]]
    if amrsd[key][0] == best[key][0] and tied:
      verdict = f"AMR-SD ties with {', '.join(tied)} for the highest mean"
    elif best is amrsd:
      verdict = "AMR-SD has the highest mean"
    else:
      verdict = f"AMR-SD does not win: {best['method']} has the highest mean"
    verdict += f" {key} accuracy ({best[key][0]:.3f}"
    verdict += ")" if amrsd[key][0] == best[key][0] else f" vs {amrsd[key][0]:.3f})"
    overlap = [r["method"] for r in methods if r is not best and r[key][2] >= best[key][1]]
    verdict += ("; methods whose CI overlaps the best one's: "
                f"{', '.join(overlap) if overlap else 'none'}")
    if "amrsd" in to_grpo:
      mean, lo, hi = to_grpo["amrsd"]
      verdict += (f"; AMR-SD - GRPO = {mean:+.3f} [{lo:+.3f}, {hi:+.3f}], "
                  + ("a difference at 95 %" if lo > 0 or hi < 0 else
                     "no difference at 95 %"))
    lines += [f"**Result ({set_name}):** {verdict}.", ""]
  for name, (mean, lo, hi) in to_base.items():
    lines += [f"**Variant ({set_name}):** {name} = {mean:+.3f} [{lo:+.3f}, {hi:+.3f}] {key} "
              "accuracy, " + ("a difference at 95 %." if lo > 0 or hi < 0 else
                              "no difference at 95 %."), ""]
  return lines


def variants_section(cfg, data, curve_keys, fig_dir) -> list[str]:
  """Curves of the variants beside GRPO and the methods they vary (same seeds)."""
  names = [n for n in labels(cfg) if n in cfg.variants]
  if not names:
    return []
  shown = ["grpo"] + [cfg.variants[n].method for n in names] + names
  shown = [m for m in dict.fromkeys(shown) if m in data["methods"]]
  lines = ["## Mechanism check and ablations", "",
           "Variants (see Setup) on the main runs' seeds and rollout streams, beside GRPO and "
           "the method they vary; final accuracies and paired differences are in the tables "
           "above, gate and CIG below.", ""]
  if plot_bands({"methods": {m: data["methods"][m] for m in shown}}, curve_keys,
                os.path.join(fig_dir, "variant_curves.png")):
    lines += ["![variant curves](figures/variant_curves.png)", ""]
  return lines


def reward_level_section(cfg, data) -> list[str]:
  """Steps each run took to reach cfg.reward_level of training reward (trailing mean of 4)."""
  lines = [f"## Steps to a training reward of {cfg.reward_level:g}", "",
           "First step whose trailing mean of 4 steps' training reward reaches the level, per "
           "seed (- = not within the run).", "",
           "| run | seeds reached | steps per seed | mean over seeds that reached |",
           "|---|---|---|---|"]
  for m, entry in data["methods"].items():
    if not entry["main"]:
      continue
    reached = steps_to_reach(entry["main"], cfg.reward_level)
    hits = [k for k in reached if k is not None]
    per_seed = ", ".join("-" if k is None else str(k) for k in reached)
    mean = f"{np.mean(hits):.1f}" if hits else "-"
    lines.append(f"| {m} | {len(hits)} of {len(reached)} | {per_seed} | {mean} |")
  return lines + [""]


def write_report(cfg, header: str = "") -> str:
  """Writes out_dir/report.md and its figures (out_dir/figures/*.png) from the files on
  disk, finished or partial; returns the report's path."""
  from amrsd.metrics import read_metrics
  data = collect(cfg)
  fig_dir = os.path.join(cfg.out_dir, "figures")
  os.makedirs(fig_dir, exist_ok=True)
  lines = [f"# Method comparison: {', '.join(cfg.methods)}", ""]
  if header:
    lines += [header, ""]
  lines += ["## Setup", "", _run_summary(cfg), ""]
  done = sum(len(v["main"]) + len(v["long"]) for v in data["methods"].values())
  lines += [f"Runs finished: {done} of {len(plan(cfg))}."]
  if data["missing"]:
    lines += [f"Not finished (left out of tables; partial curves drawn where no seed "
              f"finished): {', '.join(data['missing'])}."]
  lines += [""]

  lines += ["## Final accuracy", ""]
  scored = [sc for v in data["methods"].values() for sc in v["scores"] if sc is not None]
  if not scored:
    lines += ["No run has been scored yet (run with --stage=eval).", ""]
  for set_name in (scored[0]["sets"] if scored else ()):
    lines += accuracy_section(cfg, data, set_name, fig_dir)

  lines += ["## Learning curves", "",
            "Mean over seeds, band = +-1 sample std across seeds. Training reward/accuracy are "
            "over the step's rollouts; held-out accuracy is the trainer's periodic evaluation "
            f"({cfg.run.eval.size} held-out problems of the run's seed, greedy and one sample).",
            ""]
  methods = {"methods": {m: data["methods"][m] for m in cfg.methods}}
  curve_keys = [("reward_mean", "training reward"), ("eval_accuracy", "held-out (greedy)"),
                ("eval_accuracy_sampled", "held-out (sampled)")]
  if plot_bands(methods, curve_keys, os.path.join(fig_dir, "learning_curves.png")):
    lines += ["![learning curves](figures/learning_curves.png)", ""]
  if plot_bands(methods, [("response_length_mean", "response length (tokens)"),
                          ("entropy", "entropy (nats)")],
                os.path.join(fig_dir, "response_length.png")):
    lines += ["![response length](figures/response_length.png)", ""]
  lines += variants_section(cfg, data, curve_keys, fig_dir)
  lines += reward_level_section(cfg, data)

  # AMR-SD and its variants: gate and CIG by the sign of the advantage.
  lines += ["## AMR-SD signals", ""]
  sig_keys = [("gate_fraction", "gate fraction"), ("cig_mean_pos", "CIG mean, A > 0"),
              ("cig_mean_neg", "CIG mean, A < 0"), ("anneal_strength", "beta_k")]
  family = [m for m in labels(cfg) if m == "amrsd" or
            (m in cfg.variants and cfg.variants[m].method == "amrsd")]
  amrsd_runs = {"methods": {m: data["methods"][m] for m in family}}
  if plot_bands(amrsd_runs, sig_keys, os.path.join(fig_dir, "amrsd_signals.png")):
    lines += ["![AMR-SD signals](figures/amrsd_signals.png)", ""]
  finished = [m for m in family if data["methods"][m]["main"]]
  if finished:
    lines += ["Seed means over the first and second half of the steps (first -> second).", "",
              "| metric | " + " | ".join(finished) + " |", "|---|" + "---|" * len(finished)]
    for key in [k for k, _ in sig_keys] + ["hint_leak_rate", "hint_fraction", "hints_empty",
                                           "hint_length_mean"]:
      halves = [half_means(data["methods"][m]["main"], key) for m in finished]
      if any(halves):
        lines.append(f"| {key} | " + " | ".join(f"{h[0]:.3f} -> {h[1]:.3f}" if h else "-"
                                                 for h in halves) + " |")
    lines += [""]
  if plot_bands(amrsd_runs, [("hint_leak_rate", "hint leak-reject rate"),
                             ("hint_fraction", "rollouts with a hint")],
                os.path.join(fig_dir, "hints.png")):
    lines += ["![hints](figures/hints.png)", ""]

  # Wall time.
  timing = {}
  for m, entry in data["methods"].items():
    rows_m = [r for w in entry["main"] for r in read_metrics(os.path.join(w, "metrics.jsonl"))
              if "step_seconds" in r]
    if not rows_m:
      continue
    t = {p: float(np.mean([r.get(p, 0.0) for r in rows_m])) for p in PHASES}
    t["step"] = float(np.mean([r["step_seconds"] for r in rows_m]))
    t["other"] = max(0.0, t["step"] - sum(t[p] for p in PHASES))
    walls = [w for w in map(run_wall_seconds, entry["main"]) if w is not None]
    t["run"] = float(np.mean(walls)) if walls else float("nan")
    t["total"] = float(np.sum(walls) + sum(filter(None, map(run_wall_seconds, entry["long"]))))
    timing[m] = t
  lines += ["## Wall time", ""]
  if timing:
    lines += ["Per step: mean over every step of the main runs (the first step includes "
              "compilation). Run: launch to final evaluation (model load, compilation, periodic "
              "evaluations, checkpoints included), mean over seeds. Total: all of the "
              "method's runs, long ones included.", "",
              "| method | s/step | sample | verify | reflect | teacher | update | run (s) | "
              "total (s) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for m, t in timing.items():
      lines.append(f"| {m} | {t['step']:.1f} | {t['time_sample']:.1f} | {t['time_verify']:.2f} | "
                   f"{t['time_reflect']:.1f} | {t['time_teacher']:.1f} | {t['time_update']:.1f} | "
                   f"{t['run']:.0f} | "
                   f"{t['total']:.0f} |")
    plot_wall(timing, os.path.join(fig_dir, "wall_time.png"))
    lines += ["", "![wall time](figures/wall_time.png)", ""]

  # Long horizon.
  lines += ["## Long-horizon stability", ""]
  curves, verdicts = {}, []
  for m, entry in data["methods"].items():
    for workdir in entry["long"]:
      rows_m = read_metrics(os.path.join(workdir, "metrics.jsonl"))
      ev = [(r["step"], r["eval_accuracy"]) for r in rows_m if "eval_accuracy" in r]
      tr = [(r["step"], r["reward_mean"]) for r in rows_m if "reward_mean" in r]
      if not ev or not tr:
        continue
      steps, acc = map(np.array, zip(*ev))
      tsteps, reward = map(np.array, zip(*tr))
      curves[m] = (steps, acc, tsteps, moving_average(reward, 4))
      c_eval = collapse(steps, acc, cfg.collapse_margin)
      c_train = collapse(tsteps, moving_average(reward, 4), cfg.collapse_margin)
      verdicts.append((m, os.path.basename(workdir), c_eval, c_train))
  if verdicts:
    lines += [f"Each method continued to step {cfg.long_steps}. Collapse = the last value is "
              f"more than {cfg.collapse_margin:g} (absolute) below the run's best; checked on "
              f"held-out greedy accuracy (periodic evaluations on {cfg.run.eval.size} "
              "problems: one evaluation's standard error is up to "
              f"{0.5 / np.sqrt(cfg.run.eval.size):.2f}, so drops near the margin can be noise) "
              "and on the training reward (trailing mean of 4 steps).", "",
              "| run | held-out best (step) | held-out final | drop | collapsed | "
              "train reward best (step) | final | collapsed |", "|---|---|---|---|---|---|---|---|"]
    for m, name, ce, ct in verdicts:
      lines.append(f"| {name} | {ce['best']:.3f} ({ce['best_step']}) | {ce['final']:.3f} | "
                   f"{ce['drop']:.3f} | {'yes' if ce['collapsed'] else 'no'} | "
                   f"{ct['best']:.3f} ({ct['best_step']}) | {ct['final']:.3f} | "
                   f"{'yes' if ct['collapsed'] else 'no'} |")
    plot_long(curves, cfg.collapse_margin, os.path.join(fig_dir, "long_horizon.png"))
    lines += ["", "![long horizon](figures/long_horizon.png)", ""]
  else:
    lines += ["No long-horizon run has finished yet.", ""]

  path = os.path.join(cfg.out_dir, "report.md")
  with open(path, "w") as f:
    f.write("\n".join(lines))
  return path
