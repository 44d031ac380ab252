"""Greedy generation with transformers + PyTorch (CPU), the reference for amrsd.bench.sampling.

Runs under the separate reference venv (.venv-ref), never under the main one:
  .venv-ref/bin/python amrsd/bench/reference_generate_torch.py --gguf FILE --prompts IN.json \
      --output OUT.json --max_new_tokens 128 --threads 2
IN.json: {"prompt_ids": [[int, ...], ...]} (all rows the same length). OUT.json:
{"completion_ids": [[int] * max_new_tokens, ...] (pad id after EOS), "seconds": float,
"warmup_seconds": float, "threads": int}.
"""

import argparse
import json
import os
import time


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--gguf", required=True, help="the .gguf model file")
  parser.add_argument("--prompts", required=True, help="JSON file with prompt_ids")
  parser.add_argument("--output", required=True, help="JSON file to write")
  parser.add_argument("--max_new_tokens", type=int, default=128)
  parser.add_argument("--threads", type=int, default=2)
  args = parser.parse_args()

  import torch
  from transformers import AutoModelForCausalLM
  torch.set_num_threads(args.threads)
  folder, name = os.path.split(os.path.abspath(args.gguf))
  model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
  model.eval()
  with open(args.prompts) as f:
    prompt_ids = torch.tensor(json.load(f)["prompt_ids"], dtype=torch.long)
  config = model.generation_config
  pad_id = config.pad_token_id if config.pad_token_id is not None else config.eos_token_id
  if isinstance(pad_id, list):
    pad_id = pad_id[0]

  def generate(ids, new_tokens):
    with torch.inference_mode():
      return model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                            max_new_tokens=new_tokens, pad_token_id=pad_id)

  start = time.perf_counter()
  generate(prompt_ids[:2], 4)  # first-call overheads, not part of the timing
  warmup = time.perf_counter() - start
  start = time.perf_counter()
  output = generate(prompt_ids, args.max_new_tokens)
  seconds = time.perf_counter() - start
  completion = output[:, prompt_ids.shape[1]:].tolist()
  completion = [row + [pad_id] * (args.max_new_tokens - len(row)) for row in completion]
  with open(args.output, "w") as f:
    json.dump({"completion_ids": completion, "seconds": seconds, "warmup_seconds": warmup,
               "threads": torch.get_num_threads(), "pad_id": pad_id}, f)


if __name__ == "__main__":
  main()
