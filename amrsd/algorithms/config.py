"""AlgorithmConfig: every knob of the five methods (docs/algorithms.md sections 1-3.2).

This is the one schema of the algorithm: fields, defaults, choices and checks are written
here once. The run config's `algorithm` group is derived from it (`run_defaults`, every
field but those the run sets elsewhere), so each field is settable from the command line
as --config.algorithm.<field>=<value>.

Fields tagged [recon] are our reconstruction of AMR-SD where the paper's text is not
public; they are fields so they can be ablated. Values are checked when the config
is built, before anything compiles.
"""

import dataclasses
import math

METHODS = ("grpo", "rlsd", "amrsd", "sdpo", "opsd")
LOSS_AGGREGATIONS = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm")
ANNEAL_SCHEDULES = ("linear", "cosine", "none")
CIG_MODES = ("multiplicative", "additive")
CIG_BASELINES = ("trainer", "sampler")
GATES = ("relu", "rlsd_exp_clip")
SIDES = ("both", "pos_only", "neg_only")
TEACHER_FORWARDS = ("separate", "stacked")
# "default" is the method's own (its record in amrsd.algorithms.registry).
TEACHER_WEIGHTS = ("default", "current", "ema", "initial")


@dataclasses.dataclass(frozen=True)
class AlgorithmConfig:
  """Hyperparameters of one training step. Units: log-probs in nats, steps in optimizer steps."""

  # Method: grpo | rlsd | amrsd | sdpo | opsd (section 2).
  name: str = "grpo"

  # -- Group advantages (section 1, step 3).
  group_size: int = 8            # G rollouts per prompt; rewards are ordered group-major.
  std_norm: bool = True          # divide by the group std (GRPO); False gives Dr.GRPO.
  success_threshold: float = 0.5  # reward >= this counts as correct (accuracy metric).

  # -- PPO-clip policy-gradient loss (section 1, step 8).
  eps_lo: float = 0.2            # ratio clipped below at 1 - eps_lo.
  eps_hi: float = 0.2            # ratio clipped above at 1 + eps_hi (DAPO clip-higher: 0.28).
  # Truncated importance sampling of the policy-gradient term: each token's term is
  # weighted by min(pi_trainer / pi_sampler, tis_cap), detached, against the sampler's
  # numerics drifting from the trainer's (logprob_gap_* shows the drift). 0 is off.
  tis_cap: float = 0.0
  loss_agg: str = "token-mean"   # token-mean | seq-mean-token-mean | seq-mean-token-sum-norm.
  # k3 KL to the initial weights (the trainer keeps a frozen copy and fills batch["logp_ref"]).
  kl_coef: float = 0.0

  # -- AMR-SD: Causal Information Gain gate and annealing (section 3.2) [recon].
  beta0: float = 0.5             # initial modulation strength beta_0.
  tau_pos: float = 0.20          # CIG threshold (nats) for A > 0; may be +inf (gate never opens).
  tau_neg: float = 0.10          # CIG threshold (nats) for A < 0.
  kappa: float = 1.0             # cap on the gate value g_t.
  anneal_steps: int = 100        # K_anneal (AMR-SD): beta_k reaches 0 here.
  anneal_schedule: str = "linear"  # linear | cosine decay of beta_k and lam_k | none (ablation).
  cig_mode: str = "multiplicative"  # A(1 + beta g) | additive A + beta sign(A) g.
  # CIG's baseline: trainer = the student's log-prob from this update's own forward
  # (stop-gradient; an uninformative teacher context gives CIG exactly 0); sampler =
  # logp_old, which also carries the sampler-vs-trainer numerical gap.
  cig_baseline: str = "trainer"
  gate: str = "relu"             # relu: min(relu(sCIG - tau), kappa) | rlsd_exp_clip: clip(exp(sCIG)) - 1.
  sides: str = "both"            # modulate both signs of A, or only A > 0 / A < 0.

  # -- RLSD (section 2) [paper, as reimplemented]; also eps_w for gate = rlsd_exp_clip.
  lam0: float = 0.5              # initial mixing weight lam_0; lam_k = lam0 * schedule(k).
  rlsd_anneal_steps: int = 50    # K of RLSD: lam_k reaches 0 here, after which it is GRPO.
  eps_w: float = 0.2             # token weight clipped to [1 - eps_w, 1 + eps_w].

  # -- SDPO (section 2) [paper code].
  sdpo_topk: int = 100           # student top-k ids (plus one tail bucket); >= V: all.
  sdpo_alpha: float = 0.5        # generalized JSD; 0 forward KL(T||S), 1 reverse KL(S||T).
  sdpo_is_clip: float = 2.0      # per-token weight min(rho, sdpo_is_clip), detached.

  # -- OPSD (section 2).
  opsd_topk: int = 100           # top-k ids of the student (plus tail); >= V: full JSD.
  opsd_beta: float = 0.5         # mixture weight of the JSD (0.5 symmetric).

  # -- Teacher weights (section 3.2): what the teacher rows run on. current: the policy's
  # own weights (stop-gradient, no copy); ema: an exponential moving average of them,
  # ema <- ema + ema_rate (theta - ema) after every optimizer step; initial: the frozen
  # starting weights. default: the method's own (AMR-SD and RLSD current, SDPO ema, OPSD
  # initial; amrsd.algorithms.registry). The trainer keeps the copy (amrsd/teacher_weights.py).
  teacher_weights: str = "default"
  ema_rate: float = 0.05         # EMA step per optimizer step (SDPO's 0.05); 1 = current.

  # -- Implementation.
  logit_chunk: int = 512         # response tokens per vocabulary-sized chunk (memory bound).
  # separate: teacher rows run their own no-grad forward, so the backward pass covers
  # student rows only (the trainer runs it as a program of its own, on the rows that can
  # use it: amrsd/algorithms/teacher.py). stacked: student and teacher rows of every row
  # are padded to one length and run as one forward in the update (teacher rows
  # stop-gradient); the backward then also runs over the teacher rows (see step.py).
  teacher_forward: str = "separate"

  def __post_init__(self):
    check(dataclasses.asdict(self), "AlgorithmConfig")


CHOICES = {"name": METHODS, "loss_agg": LOSS_AGGREGATIONS, "anneal_schedule": ANNEAL_SCHEDULES,
           "cig_mode": CIG_MODES, "cig_baseline": CIG_BASELINES, "gate": GATES, "sides": SIDES,
           "teacher_forward": TEACHER_FORWARDS, "teacher_weights": TEACHER_WEIGHTS}
# Rule per numeric field: (test, what the message says).
RULES = {
    "group_size": (lambda v: v >= 1, "must be >= 1"),
    "anneal_steps": (lambda v: v >= 1, "must be >= 1"),
    "rlsd_anneal_steps": (lambda v: v >= 1, "must be >= 1"),
    "ema_rate": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
    "eps_lo": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "eps_hi": (lambda v: v >= 0, "must be >= 0"),
    "eps_w": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "kl_coef": (lambda v: v >= 0, "must be >= 0"),
    "tis_cap": (lambda v: v >= 0, "must be >= 0 (0 turns truncated importance sampling off)"),
    "beta0": (lambda v: v >= 0 and math.isfinite(v), "must be finite and >= 0"),
    "lam0": (lambda v: 0 <= v <= 1, "must be in [0, 1]"),
    "tau_pos": (lambda v: v >= 0, "must be >= 0 (float('inf') disables the gate)"),
    "tau_neg": (lambda v: v >= 0, "must be >= 0 (float('inf') disables the gate)"),
    "kappa": (lambda v: v >= 0 and math.isfinite(v), "must be finite and >= 0"),
    "sdpo_topk": (lambda v: v >= 1, "must be >= 1"),
    "opsd_topk": (lambda v: v >= 1, "must be >= 1"),
    "sdpo_alpha": (lambda v: 0 <= v <= 1, "must be in [0, 1]"),
    "opsd_beta": (lambda v: 0 <= v <= 1, "must be in [0, 1]"),
    "sdpo_is_clip": (lambda v: v > 0, "must be > 0"),
    "success_threshold": (lambda v: math.isfinite(v), "must be finite"),
    "logit_chunk": (lambda v: v >= 1, "must be >= 1"),
}
# Fields the run config sets from another group: group_size is rollout.group_size.
RUN_OWNED = ("group_size",)


def check(values, where: str) -> None:
  """Raises ValueError naming `where`.field, its value and the legal values or rule.

  values: a mapping of field names to values (an AlgorithmConfig's or the run config's
  algorithm group); where: how the message names the group ("config.algorithm").
  """
  for field, valid in CHOICES.items():
    if field in values and values[field] not in valid:
      raise ValueError(f"{where}.{field}={values[field]!r} is not valid; choose one of "
                       f"{', '.join(valid)}")
  for field, (ok, rule) in RULES.items():
    if field in values and not ok(values[field]):
      raise ValueError(f"{where}.{field}={values[field]!r} {rule}")


def run_defaults(**overrides) -> dict:
  """The run config's algorithm group: every field's default but RUN_OWNED, then overrides."""
  fields = {f.name: f.default for f in dataclasses.fields(AlgorithmConfig)
            if f.name not in RUN_OWNED}
  unknown = set(overrides) - set(fields)
  if unknown:
    raise ValueError(f"run_defaults: {sorted(unknown)} are not algorithm fields")
  return {**fields, **overrides}
