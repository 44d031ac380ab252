"""Statistics of the method comparison, read back from the files a comparison leaves.

Intervals (Wilson, bootstrap over seeds and problems, paired differences), moving averages
and the collapse check, seed bands of logged metrics, and `collect`/`accuracy_rows`: the
numbers amrsd.compare_report turns into figures and markdown.
"""

import json
import os

import numpy as np

from amrsd.compare_plan import BASE, RUN_CONFIG, SCORES, is_finished, labels, plan

Z95 = 1.959963984540054  # two-sided 95 % normal quantile


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
  """Wilson score interval of a binomial proportion (successes of n)."""
  if n <= 0:
    raise ValueError(f"wilson: n={n} must be > 0")
  p = successes / n
  center = (p + z * z / (2 * n)) / (1 + z * z / n)
  half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
  return float(center - half), float(center + half)


def _bootstrap_indices(seeds, problems, resamples, rng_seed):
  rng = np.random.default_rng(rng_seed)
  return (rng.integers(seeds, size=(resamples, seeds)),
          rng.integers(problems, size=(resamples, problems)))


def bootstrap_ci(scores, *, resamples=2000, seed=0, level=0.95) -> tuple[float, float, float]:
  """(mean, low, high) of the mean of scores [seeds, problems] (float, per-problem accuracy
  of each seed's run on the shared problem set): percentile bootstrap resampling seeds and
  problems with replacement (the same problem draw for every seed: problems are shared)."""
  scores = np.asarray(scores, np.float64)
  if scores.ndim != 2 or not scores.size:
    raise ValueError(f"bootstrap_ci: scores must be [seeds, problems], got shape {scores.shape}")
  s_idx, p_idx = _bootstrap_indices(*scores.shape, resamples, seed)
  stats = scores[s_idx[:, :, None], p_idx[:, None, :]].mean(axis=(1, 2))
  tail = (1 - level) / 2
  low, high = np.quantile(stats, [tail, 1 - tail])
  return float(scores.mean()), float(low), float(high)


def paired_difference_ci(a, b, **kwargs) -> tuple[float, float, float]:
  """bootstrap_ci of a - b, both [seeds, problems] with row i of each from the same seed
  (same data order and rollout streams) and the same problems: a paired comparison."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if a.shape != b.shape:
    raise ValueError(f"paired_difference_ci: shapes {a.shape} and {b.shape} differ; both "
                     "methods need the same seeds scored on the same problems")
  return bootstrap_ci(a - b, **kwargs)


def moving_average(values, window: int) -> np.ndarray:
  """Trailing mean over up to `window` points (the first points average fewer)."""
  values = np.asarray(values, np.float64)
  sums = np.cumsum(np.concatenate([[0.0], values]))
  starts = np.maximum(np.arange(1, len(values) + 1) - window, 0)
  return (sums[1:] - sums[starts]) / (np.arange(1, len(values) + 1) - starts)


def collapse(steps, values, margin: float) -> dict:
  """Late collapse of a curve: the last value is more than `margin` below the best one.

  Returns {"best", "best_step", "final", "final_step", "drop", "collapsed"}; drop =
  best - final (>= 0)."""
  if len(steps) != len(values) or not len(values):
    raise ValueError(f"collapse: need equally long, non-empty steps and values "
                     f"(got {len(steps)} and {len(values)})")
  best = int(np.argmax(values))
  drop = float(values[best] - values[-1])
  return {"best": float(values[best]), "best_step": int(steps[best]),
          "final": float(values[-1]), "final_step": int(steps[-1]), "drop": drop,
          "collapsed": drop > margin}


def seed_band(runs, key):
  """(steps, mean, std) of metric `key` over the runs (one per seed), on the steps every run
  logged; std is the sample std across seeds (0 with one seed)."""
  from amrsd.metrics import read_metrics
  series = []
  for workdir in runs:
    rows = read_metrics(os.path.join(workdir, "metrics.jsonl"))
    series.append({r["step"]: float(r[key]) for r in rows
                   if isinstance(r.get(key), (int, float))})
  common = sorted(set.intersection(*(set(s) for s in series))) if series else []
  if not common:
    return np.zeros(0), np.zeros(0), np.zeros(0)
  values = np.array([[s[k] for k in common] for s in series])
  std = values.std(axis=0, ddof=1) if len(series) > 1 else np.zeros(len(common))
  return np.array(common), values.mean(axis=0), std


def half_means(runs, key):
  """(first half, second half) means over the steps of the seed mean of `key` (second
  is nan with one step); None when no run logged it."""
  steps, mean, _ = seed_band(runs, key)
  if not len(steps):
    return None
  half = len(mean) // 2 or 1
  return float(mean[:half].mean()), float(mean[half:].mean()) if len(mean) > 1 else float("nan")


def _read_json(path):
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def run_wall_seconds(workdir):
  """Seconds from the run's launch (run_config.json written) to its final evaluation;
  None for an unfinished run. A resumed run counts its restarts' gaps too."""
  start, end = os.path.join(workdir, RUN_CONFIG), os.path.join(workdir, "final_eval.json")
  if not (os.path.exists(start) and os.path.exists(end)):
    return None
  return os.path.getmtime(end) - os.path.getmtime(start)


def collect(cfg) -> dict:
  """Everything the report needs, read from out_dir: {"methods": {label (a method or a
  variant): {"main": [workdir per finished seed], "seeds": [...], "scores": [scores per
  finished seed], "long": [workdirs], "partial": [workdirs]}}} plus "base" scores and
  "missing" run names."""
  from amrsd.metrics import read_metrics
  out = {"methods": {}, "missing": [], "base": _read_json(os.path.join(cfg.out_dir, BASE, SCORES))}
  for m in labels(cfg):
    out["methods"][m] = {"main": [], "seeds": [], "scores": [], "long": [], "partial": []}
  for spec in plan(cfg):
    workdir = os.path.join(cfg.out_dir, spec.name)
    entry = out["methods"][spec.label]
    if not is_finished(workdir, spec.steps):
      out["missing"].append(spec.name)
      if read_metrics(os.path.join(workdir, "metrics.jsonl")):
        entry["partial"].append(workdir)
      continue
    if spec.source:
      entry["long"].append(workdir)
      continue
    entry["main"].append(workdir)
    entry["seeds"].append(spec.seed)
    entry["scores"].append(_read_json(os.path.join(workdir, SCORES)))
  return out


def steps_to_reach(runs, level: float, key: str = "reward_mean", window: int = 4) -> list:
  """Per run, the first step whose trailing mean (over `window` logged steps) of `key`
  reaches `level`; None where it never does."""
  from amrsd.metrics import read_metrics
  out = []
  for workdir in runs:
    rows = [r for r in read_metrics(os.path.join(workdir, "metrics.jsonl"))
            if isinstance(r.get(key), (int, float))]
    smooth = moving_average([r[key] for r in rows], window)
    out.append(next((r["step"] for r, v in zip(rows, smooth) if v >= level), None))
  return out


def score_matrix(scores, kind):
  """[seeds, problems] per-problem accuracy from one set's scores per seed: greedy (0/1)
  or sampled (mean over the k samples)."""
  return np.array([np.asarray(s[kind], np.float64).reshape(len(s[kind]), -1).mean(axis=1)
                   for s in scores])


def accuracy_rows(cfg, data, set_name) -> list[dict]:
  """Per method with scores on set_name: {"method", "seeds", "seed_ids", "greedy"/"sampled":
  (mean, lo, hi) bootstrap, "<kind>_matrix" [seeds, problems], "<kind>_per_seed", "wilson"
  (greedy, pooled)}; greedy keys only when greedy answers were scored."""
  b = cfg.bootstrap
  rows = []
  for m, entry in data["methods"].items():
    pairs = [(seed, sc["sets"][set_name]) for seed, sc in zip(entry["seeds"], entry["scores"])
             if sc is not None and set_name in sc["sets"]]
    if not pairs:
      continue
    seed_ids, scores = map(list, zip(*pairs))
    row = {"method": m, "seeds": len(scores), "seed_ids": seed_ids}
    kinds = ("greedy", "sampled") if scores[0]["greedy"] is not None else ("sampled",)
    for kind in kinds:
      matrix = score_matrix(scores, kind)
      row[kind] = bootstrap_ci(matrix, resamples=b.resamples, seed=b.seed)
      row[kind + "_matrix"] = matrix
      row[kind + "_per_seed"] = matrix.mean(axis=1)
    main = row.get("greedy_matrix", row["sampled_matrix"])
    if "greedy" in row:
      row["wilson"] = wilson(main.sum(), main.size)
    rows.append(row)
  return rows
