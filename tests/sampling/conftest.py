"""Fixtures for the sampler tests: a real word-level tokenizer over the tiny model's vocabulary."""

import pytest
from tokenizers import Tokenizer, models as tokenizer_models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

TINY_VOCAB = 128  # tiny_config's vocab_size
SPECIAL = {0: "<pad>", 1: "<eos>", 3: "<unk>"}  # tiny_config: pad 0, eos 1; others are "t{i}"


@pytest.fixture(scope="session")
def tiny_tokenizer():
  vocab = {SPECIAL.get(i, f"t{i}"): i for i in range(TINY_VOCAB)}
  backend = Tokenizer(tokenizer_models.WordLevel(vocab, unk_token="<unk>"))
  backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
  tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>",
                                      pad_token="<pad>", unk_token="<unk>")
  # A real (if minimal) chat template: contents in order, then the assistant marker t4.
  tokenizer.chat_template = ("{% for m in messages %}{{ m['content'] }} {% endfor %}"
                             "{% if add_generation_prompt %}t4{% endif %}")
  return tokenizer
