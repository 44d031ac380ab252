"""Multi-turn tool use (BFCL episodes): --config=configs/multiturn.py:VARIANT.

VARIANT is a method (grpo|rlsd|sdpo|opsd|amrsd) for the paper-scale recipe, or METHOD_cpu
(e.g. amrsd_cpu) for the CPU one.

Every rollout is an episode of the `bfcl_multi_turn` environment (amrsd.envs): the policy
writes calls in BFCL's format (`[cd(folder='docs'), ls()]`), the simulated APIs answer,
the next user turn follows a message without calls, and BFCL's multi-turn checker scores
the finished episode (1 or 0) with feedback naming the first wrong turn. Episodes run on
one sampler session (the KV cache continues after each observation); the update trains on
the policy's tokens only. AMR-SD's reflection reads the episode's transcript and the
checker's feedback; the teacher re-scores the whole episode with the hint after the first
request. Held-out score: the tenth of the episodes never trained on, played greedily.

The chat template must only append (each message renders the same whatever follows);
rollouts check it at the first observation and refuse one that rewrites past messages,
as Qwen3's stock template does to past thinking. The paper recipe therefore sets
model.chat_template = "chatml_append" (shipped: ChatML with Qwen's <tool_response> turns,
past thinking kept as written); SmolLM2's own template only appends.

Paper scale: an 8B-class policy (Qwen3-8B, as the other domain recipes), BFCL's four
multi-turn categories, group 8, episodes of up to 8 assistant messages of 512 tokens
within 4096 tokens.
CPU: SmolLM2-135M-Instruct on multi_turn_base's shortest openings (4.4k-5k tokens of tool
documentation), 1 episode x 2 rollouts, 4 messages of 48 tokens within 512, top 4 blocks
trained, 3 steps: runs end to end in about a quarter of an hour on 2 cores. The 135M
model calls nothing useful, so this checks the pipeline, not the method.
"""

from amrsd import config as config_lib
from amrsd import prompts
from amrsd.config import METHODS, default_config


def get_config(variant="amrsd"):
  method, _, scale = variant.partition("_")
  if method not in METHODS or scale not in ("", "cpu"):
    raise ValueError(f"configs/multiturn.py:{variant}: choose METHOD or METHOD_cpu with METHOD "
                     f"one of {', '.join(METHODS)}")
  c = default_config()
  c.workdir = f"runs/multiturn_{variant}"
  c.algorithm.name = method
  c.data.env = "bfcl_multi_turn"
  c.data.task = "bfcl_mt:base,miss_func,miss_param,long_context"
  c.data.task_args = {}
  c.prompts.task = "{problem}"            # BFCL's system prompt holds the tools and format
  c.prompts.update(prompts.reflection_templates("bfcl_multi_turn"))
  config_lib.scale_to(c, scale)
  # Openings are 3.9k-10k tokens of SmolLM2's tokenizer (the tool documentation).
  c.rollout.prompt_buckets = (4096, 5120, 6144, 8192, 12288)
  if scale == "cpu":
    c.data.task = "bfcl_mt:base"
    c.data.max_prompt_tokens = 5000       # 31 of 180 training episodes, 2 held out
    c.rollout.prompts_per_step = 1
    c.rollout.group_size = 2
    c.rollout.max_turns = 4
    c.rollout.max_tokens_per_turn = 48
    c.rollout.max_new_tokens = 512
    c.train.steps = 3
    c.eval.size = 2
    c.checkpoint.every_steps = 1
    c.log.plot_every_steps = 1
  else:
    c.model.chat_template = "chatml_append"
    c.data.max_prompt_tokens = 12288
    c.rollout.max_turns = 8
    c.rollout.max_tokens_per_turn = 512
    c.rollout.max_new_tokens = 4096
    # The end of a whole episode, not of one answer.
    c.reflection.peer_max_chars = c.reflection.attempt_max_chars = 2000
    c.train.steps = 200
    c.eval.every_steps = 25
    c.eval.size = 64
  return c

