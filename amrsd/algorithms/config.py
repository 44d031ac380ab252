"""AlgorithmConfig: every knob of the five methods (ALGORITHMS.md sections 1-3.2).

Fields tagged [recon] are our reconstruction of AMR-SD where the paper's text is not
public; they are fields so they can be ablated. Values are checked when the config
is built, before anything compiles.
"""

import dataclasses
import math

METHODS = ("grpo", "rlsd", "amrsd", "sdpo", "opsd")
LOSS_AGGREGATIONS = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm")
ANNEAL_SCHEDULES = ("linear", "cosine")
CIG_MODES = ("multiplicative", "additive")
GATES = ("relu", "rlsd_exp_clip")
SIDES = ("both", "pos_only", "neg_only")
TEACHER_FORWARDS = ("separate", "stacked")


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
  loss_agg: str = "token-mean"   # token-mean | seq-mean-token-mean | seq-mean-token-sum-norm.
  kl_coef: float = 0.0           # k3 KL to a reference policy; > 0 needs batch["logp_ref"].

  # -- AMR-SD: Causal Information Gain gate and annealing (section 3.2) [recon].
  beta0: float = 0.5             # initial modulation strength beta_0.
  tau_pos: float = 0.20          # CIG threshold (nats) for A > 0; may be +inf (gate never opens).
  tau_neg: float = 0.10          # CIG threshold (nats) for A < 0.
  kappa: float = 1.0             # cap on the gate value g_t.
  anneal_steps: int = 100        # K_anneal (AMR-SD) and K (RLSD): strength reaches 0 here.
  anneal_schedule: str = "linear"  # linear | cosine decay of beta_k and lam_k.
  cig_mode: str = "multiplicative"  # A(1 + beta g) | additive A + beta sign(A) g.
  gate: str = "relu"             # relu: min(relu(sCIG - tau), kappa) | rlsd_exp_clip: clip(exp(sCIG)) - 1.
  sides: str = "both"            # modulate both signs of A, or only A > 0 / A < 0.

  # -- RLSD (section 2) [paper, as reimplemented]; also eps_w for gate = rlsd_exp_clip.
  lam0: float = 0.5              # initial mixing weight lam_0; lam_k = lam0 * schedule(k).
  eps_w: float = 0.2             # token weight clipped to [1 - eps_w, 1 + eps_w].

  # -- SDPO (section 2) [paper code].
  sdpo_topk: int = 100           # student top-k ids (plus one tail bucket).
  sdpo_alpha: float = 0.5        # generalized JSD; 0 forward KL(T||S), 1 reverse KL(S||T).
  sdpo_is_clip: float = 2.0      # per-token weight min(rho, sdpo_is_clip), detached.

  # -- OPSD (section 2).
  opsd_topk: int = 100           # top-k ids of the student (plus tail); vocab size = full JSD.
  opsd_beta: float = 0.5         # mixture weight of the JSD (0.5 symmetric).

  # -- Implementation.
  logit_chunk: int = 512         # response tokens per vocabulary-sized chunk (memory bound).
  # separate: teacher rows run their own no-grad forward in the same jitted program, so
  # the backward pass covers student rows only. stacked: student and teacher rows are
  # padded to one length and run as one forward (teacher rows stop-gradient); the
  # backward then also runs over the teacher rows (see step.py).
  teacher_forward: str = "separate"

  def __post_init__(self):
    choices = {"name": METHODS, "loss_agg": LOSS_AGGREGATIONS,
               "anneal_schedule": ANNEAL_SCHEDULES, "cig_mode": CIG_MODES, "gate": GATES,
               "sides": SIDES, "teacher_forward": TEACHER_FORWARDS}
    for field, valid in choices.items():
      value = getattr(self, field)
      if value not in valid:
        raise ValueError(f"AlgorithmConfig.{field}={value!r} is not valid; "
                         f"choose one of {', '.join(valid)}")
    _check(self, "group_size", self.group_size >= 1, "must be >= 1")
    _check(self, "anneal_steps", self.anneal_steps >= 1, "must be >= 1")
    _check(self, "eps_lo", 0 <= self.eps_lo < 1, "must be in [0, 1)")
    _check(self, "eps_hi", self.eps_hi >= 0, "must be >= 0")
    _check(self, "eps_w", 0 <= self.eps_w < 1, "must be in [0, 1)")
    _check(self, "kl_coef", self.kl_coef >= 0, "must be >= 0")
    _check(self, "beta0", self.beta0 >= 0 and math.isfinite(self.beta0), "must be finite and >= 0")
    _check(self, "lam0", 0 <= self.lam0 <= 1, "must be in [0, 1]")
    _check(self, "tau_pos", self.tau_pos >= 0, "must be >= 0 (float('inf') disables the gate)")
    _check(self, "tau_neg", self.tau_neg >= 0, "must be >= 0 (float('inf') disables the gate)")
    _check(self, "kappa", self.kappa >= 0 and math.isfinite(self.kappa), "must be finite and >= 0")
    _check(self, "sdpo_topk", self.sdpo_topk >= 1, "must be >= 1")
    _check(self, "opsd_topk", self.opsd_topk >= 1, "must be >= 1")
    _check(self, "sdpo_alpha", 0 <= self.sdpo_alpha <= 1, "must be in [0, 1]")
    _check(self, "opsd_beta", 0 <= self.opsd_beta <= 1, "must be in [0, 1]")
    _check(self, "sdpo_is_clip", self.sdpo_is_clip > 0, "must be > 0")
    _check(self, "logit_chunk", self.logit_chunk >= 1, "must be >= 1")


def _check(config, field, ok, rule):
  if not ok:
    raise ValueError(f"AlgorithmConfig.{field}={getattr(config, field)!r} {rule}")
