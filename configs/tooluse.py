"""Tool use (function calling): --config=configs/tooluse.py:VARIANT.

VARIANT is a method (grpo|rlsd|sdpo|opsd|amrsd) for the paper-scale recipe, or METHOD_cpu
(e.g. amrsd_cpu) for the CPU one.

Training data: the Berkeley Function Calling Leaderboard's single-turn Python categories
as the bfcl-eval package ships them (ToolAlpaca's training split is not public in the
converted form), with BFCL's own prompt (function list in the system prompt, calls
written as `[f(a=1)]`) and its AST checker as the reward (`bfcl` verifier). The trainer's
held-out score uses the tenth of those rows that is never trained on (amrsd.data.bfcl).

Report avg@16 on the tool-use sets never trained on: ToolAlpaca-style ReAct calls
(`tooluse`, shipped with amrsd) and BFCL's live categories:
  python -m amrsd.evaluate --config=configs/tooluse.py:amrsd --checkpoint=runs/tooluse_amrsd \
    --benchmarks=tooluse,bfcl:live_simple,bfcl:live_multiple,bfcl:live_parallel,bfcl:live_parallel_multiple \
    --samples=16 --temperature=0.6 --max_new_tokens=1024
The ToolAlpaca set asks for `Action:` / `Action Input:` lines, a format BFCL training does
not teach; its score measures transfer.

CPU: SmolLM2-135M-Instruct on bfcl:simple (the shortest prompts), 4 prompts x 4 samples,
64 new tokens, 6 steps: runs end to end in minutes.
"""

from amrsd import config as config_lib
from amrsd import prompts
from amrsd.config import METHODS, default_config


def get_config(variant="amrsd"):
  method, _, scale = variant.partition("_")
  if method not in METHODS or scale not in ("", "cpu"):
    raise ValueError(f"configs/tooluse.py:{variant}: choose METHOD or METHOD_cpu with METHOD "
                     f"one of {', '.join(METHODS)}")
  c = default_config()
  c.workdir = f"runs/tooluse_{variant}"
  c.algorithm.name = method
  c.data.task = "bfcl:simple,multiple,parallel,parallel_multiple"
  c.data.task_args = {}
  c.data.verifier = "bfcl"
  c.prompts.task = "{problem}"            # BFCL's system prompt holds the tools and format
  c.prompts.update(prompts.reflection_templates("bfcl"))
  config_lib.scale_to(c, scale)
  if scale == "cpu":
    c.data.task = "bfcl:simple"           # the shortest prompts: one function's documentation
  c.data.max_prompt_tokens = 768 if scale == "cpu" else 4096  # parallel_multiple: many tools
  c.rollout.max_new_tokens = 64 if scale == "cpu" else 1024   # calls, not essays
  if not scale:
    c.train.steps = 200
    c.eval.every_steps = 25
    c.eval.size = 100
  return c

