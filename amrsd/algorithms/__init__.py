"""Algorithms: group advantages, token log-probs, CIG kernel, losses, the train step.

One module per concern; methods are looked up by name in `registry`.
"""

from amrsd.algorithms.advantages import group_advantages
from amrsd.algorithms.cig import amrsd_token_advantages, rlsd_token_advantages
from amrsd.algorithms.config import METHODS, AlgorithmConfig
from amrsd.algorithms.logprobs import jitted_token_logprobs, token_logprobs
from amrsd.algorithms.losses import aggregate, generalized_jsd, k3_kl, ppo_clip_loss
from amrsd.algorithms.registry import REGISTRY, get
from amrsd.algorithms.schedules import anneal
from amrsd.algorithms.step import (check_batch, init_opt_state, make_grad_fn, make_train_step,
                                   metric_names)

__all__ = ["group_advantages", "amrsd_token_advantages", "rlsd_token_advantages", "METHODS",
           "AlgorithmConfig", "jitted_token_logprobs", "token_logprobs", "aggregate",
           "generalized_jsd", "k3_kl", "ppo_clip_loss", "REGISTRY", "get", "anneal",
           "check_batch", "init_opt_state", "make_grad_fn", "make_train_step", "metric_names"]
