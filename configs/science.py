"""Science QA (SciKnowEval, 4-option multiple choice): --config=configs/science.py:VARIANT.

VARIANT is a method (grpo|rlsd|sdpo|opsd|amrsd) for the paper-scale recipe, or METHOD_cpu
(e.g. amrsd_cpu) for the CPU one. Rows carry their own system prompt asking for
`<reasoning>...</reasoning><answer>X</answer>`; the `mcq` verifier reads the letter.

Data: the training split is not shipped, so name it:
  --config.data.train_path=<dir>/sciknoweval/chemistry_train.jsonl
The held-out set defaults to the shipped chemistry test split (data.eval_path =
"sciknoweval_chemistry"; a file path works too). SciKnowEval level-3 questions as lasgroup/SDPO splits and filters them (Apache-2.0): one
JSON object per line with prompt, answer (A-D) and system. Concatenate the four
{biology,chemistry,material,physics}_train.jsonl files to train on all domains.

Paper scale: Qwen3-8B class policy (model.path: a local Hugging Face folder), group 8,
hints of 128 tokens per rollout, 4096 new tokens. Report avg@16 per test set:
  python -m amrsd.evaluate --config=configs/science.py:amrsd --checkpoint=runs/science_amrsd \
    --benchmarks=sciknoweval_biology,sciknoweval_chemistry,sciknoweval_material,sciknoweval_physics \
    --samples=16 --temperature=0.6 --max_new_tokens=4096
CPU: SmolLM2-135M-Instruct, 4 prompts x 4 samples, 96 new tokens, 6 steps: runs end to end
in minutes; the 135M model is near chance here (README), so it checks the pipeline, not
the method.
"""

from amrsd import prompts
from amrsd import config as config_lib
from amrsd.config import METHODS, default_config


def get_config(variant="amrsd"):
  method, _, scale = variant.partition("_")
  if method not in METHODS or scale not in ("", "cpu"):
    raise ValueError(f"configs/science.py:{variant}: choose METHOD or METHOD_cpu with METHOD "
                     f"one of {', '.join(METHODS)}")
  c = default_config()
  c.workdir = f"runs/science_{variant}"
  c.algorithm.name = method
  c.data.task = "jsonl"
  c.data.train_path = ""                  # required: see the docstring
  c.data.eval_path = "sciknoweval_chemistry"  # a shipped test split, or a file of that format
  c.data.dataset = "sciknoweval"
  c.data.task_args = {}
  c.data.verifier = "mcq"
  c.prompts.task = "{problem}"            # the answer format is in each row's system prompt
  c.prompts.update(prompts.reflection_templates("mcq"))
  config_lib.scale_to(c, scale)
  c.data.max_prompt_tokens = 512 if scale == "cpu" else 1024  # SMILES make some prompts long
  # CPU: room for a short <reasoning> and the <answer>; paper: long chains of thought.
  c.rollout.max_new_tokens = 96 if scale == "cpu" else 4096
  if not scale:
    c.train.steps = 300
    c.eval.every_steps = 50
    c.eval.size = 256
  return c
