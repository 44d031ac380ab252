"""Real BFCL multi-turn episodes (bfcl-eval's data) and one worker pool for the tests."""

import json

import pytest
from tokenizers import Tokenizer, models as tokenizer_models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from amrsd import data, rewards

CATEGORIES = ("base", "miss_func", "miss_param", "long_context")


@pytest.fixture(scope="session")
def episodes():
  """{bfcl row id: amrsd record} for every episode of the four categories."""
  source = data.open_dataset("bfcl_mt:" + ",".join(CATEGORIES), split="all")
  return {record["id"]: record for record in source.records}


def word_chat_tokenizer():
  """Word-level over the tiny model's 128 ids, with a chat template that only appends
  (role markers, contents, end of turn) as real templates do; it leaves out the system
  message (BFCL's function documentation), which would outgrow the tiny model's context.
  BFCL's words are unknown to it: the tiny model plays the episodes' structure."""
  vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 3, "<turn>": 4, "assistant": 5, "user": 6,
           "tool": 7, "system": 8}
  vocab.update({f"t{i}": i for i in range(9, 128)})
  backend = Tokenizer(tokenizer_models.WordLevel(vocab, unk_token="<unk>"))
  backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
  tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>",
                                      pad_token="<pad>", unk_token="<unk>")
  tokenizer.chat_template = ("{% for m in messages %}{% if m['role'] != 'system' %}<turn> "
                             "{{ m['role'] }} {{ m['content'] }} <eos> {% endif %}{% endfor %}"
                             "{% if add_generation_prompt %}<turn> assistant {% endif %}")
  return tokenizer


def save_tiny_episode_model(folder) -> str:
  """An HF folder: the tiny random model (tests.conftest.tiny_config) with the word-level
  chat tokenizer, its EOS embedding scaled up so that messages and hints end within a
  few tokens. Returns the folder."""
  from flax import nnx
  from amrsd import models
  from tests.conftest import tiny_config
  model = models.Decoder(tiny_config(), rngs=nnx.Rngs(1))
  model.embed[...] = model.embed[...].at[1].multiply(50.0)
  models.save_hf(model, word_chat_tokenizer(), str(folder))
  return str(folder)


@pytest.fixture(scope="module")
def chat_tokenizer():
  return word_chat_tokenizer()


@pytest.fixture(scope="session")
def pool():
  with rewards.VerifierPool(2) as p:
    p.wait_ready()
    yield p


def ground_truth(record) -> list[list[str]]:
  return json.loads(record["answer"])


def as_message(calls: list[str]) -> str:
  """Calls as the assistant writes them in BFCL's prompting format."""
  return "[" + ", ".join(calls) + "]"


def ground_truth_messages(record, edit=None) -> list[str]:
  """One message of calls per turn (none for a turn without calls), each followed by a
  message without calls; edit(turn index, calls) -> calls changes a turn."""
  messages = []
  for turn, calls in enumerate(ground_truth(record)):
    calls = edit(turn, list(calls)) if edit else calls
    if calls:
      messages.append(as_message(calls))
    messages.append("I have done what you asked.")
  return messages


def play(env, messages) -> list[list[dict]]:
  """Starts env and sends messages until it is done; what each step returned."""
  env.start()
  returned = []
  for text in messages:
    if env.done:
      break
    returned.append(env.step(text))
  return returned
