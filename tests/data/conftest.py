"""A small real tokenizer (word level, with a chat template) for pipeline tests."""

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

CHAT_TEMPLATE = ("{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} </s> {% endfor %}"
                 "{% if add_generation_prompt %}<assistant>{% endif %}")


@pytest.fixture(scope="session")
def word_tokenizer():
  """One token per word or punctuation mark (whitespace pre-tokenizer)."""
  vocab = {"[UNK]": 0, "What": 1, "is": 2, "?": 3, "+": 4, "<": 5, ">": 6}
  backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
  backend.pre_tokenizer = pre_tokenizers.Whitespace()
  tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")
  tokenizer.chat_template = CHAT_TEMPLATE
  return tokenizer
