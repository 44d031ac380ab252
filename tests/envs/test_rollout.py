"""Multi-turn rollouts on one sampler session: real BFCL episodes, the chat's token layout."""

import numpy as np
import pytest
from tokenizers import Tokenizer, models as tokenizer_models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from amrsd import envs
from amrsd.envs import rollout
from amrsd.sampling import Sampler
from tests.sampling.test_sampler import full_forward

EPISODES = ["multi_turn_base_10", "multi_turn_miss_func_0"]


@pytest.fixture(scope="module")
def chat_tokenizer():
  """Word-level over the tiny model's 128 ids, with a chat template that only appends
  (role markers, contents, end of turn) as real templates do; it leaves out the system
  message (BFCL's function documentation), which would outgrow the tiny model's context."""
  vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 3, "<turn>": 4, "assistant": 5, "user": 6,
           "tool": 7, "system": 8}
  vocab.update({f"t{i}": i for i in range(9, 128)})
  backend = Tokenizer(tokenizer_models.WordLevel(vocab, unk_token="<unk>"))
  backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
  tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>",
                                      pad_token="<pad>", unk_token="<unk>")
  tokenizer.chat_template = ("{% for m in messages %}{% if m['role'] != 'system' %}<turn> "
                             "{{ m['role'] }} {{ m['content'] }} <eos> {% endif %}{% endfor %}{% if add_generation_prompt %}<turn> assistant "
                             "{% endif %}")
  return tokenizer


def test_episodes_continue_on_one_cache_and_match_one_forward(tiny_model, chat_tokenizer,
                                                              episodes, pool):
  games = [envs.make("bfcl_multi_turn", episodes[i], pool=pool, max_turns=3) for i in EPISODES]
  sampler = Sampler(tiny_model, chat_tokenizer, prompt_buckets=(256, 512, 1024))
  out = rollout.play(sampler, games, max_tokens_per_turn=8, max_tokens=256, seed=0)
  t = out.trajectories
  # The tiny model writes no calls: each message ends a user turn, 3 messages end the game.
  assert out.metrics["turns_mean"] == 3 and out.metrics["tool_calls_mean"] == 0
  assert [v.reward for v in out.verdicts] == [0.0, 0.0]
  assert all("turn" in v.feedback for v in out.verdicts)
  assert t.policy_mask.sum(axis=1).tolist() == [24, 24]  # 3 turns of 8 (no EOS here)
  assert 0 < out.metrics["policy_token_fraction"] < 1
  # Policy tokens: log-probs of one forward over the whole episode; the rest carries none.
  _, logp = full_forward(tiny_model, t)
  policy = t.policy_mask.astype(bool)
  np.testing.assert_allclose(t.completion_logprobs[policy], logp[policy], atol=1e-4)
  assert (t.completion_logprobs[~policy] == 0).all()
  # Between turns, in the episode's tokens: the cut-off message's end-of-turn, the next
  # user turn as the template renders it, the next assistant opening.
  for row, chat in enumerate(out.messages):
    words = lambda text: chat_tokenizer.decode(chat_tokenizer(text)["input_ids"])
    between = [f"<eos> <turn> user {words(m['content'])} <eos> <turn> assistant"
               for m in chat[3:] if m["role"] == "user"]
    observed = t.completion_ids[row][(t.completion_mask[row] > 0) & ~policy[row]]
    assert chat_tokenizer.decode(observed) == " ".join(between)
    assert [m["role"] for m in chat[2:]] == ["assistant", "user", "assistant", "user",
                                             "assistant"]


def test_observation_ids_close_the_message_then_open_the_next(smollm):
  _, tokenizer = smollm
  eos = [tokenizer.convert_tokens_to_ids("<|im_end|>")]
  chat = [{"role": "user", "content": "List the files."},
          {"role": "assistant", "content": "[ls()]"}]
  tool = [{"role": "tool", "name": "ls()", "content": "{\"current_directory_content\": []}"}]
  ended = tokenizer.decode(rollout.observation_ids(tokenizer, chat, tool, eos, ended=True))
  cut = tokenizer.decode(rollout.observation_ids(tokenizer, chat, tool, eos, ended=False))
  assert cut == "<|im_end|>" + ended  # a cut-off message is closed by the template's token
  assert ended.startswith("\n<|im_start|>tool\n") and ended.endswith("<|im_start|>assistant\n")
  assert "current_directory_content" in ended


def test_a_template_that_rewrites_history_is_refused(chat_tokenizer):
  import copy
  tokenizer = copy.deepcopy(chat_tokenizer)
  # Like templates that drop earlier assistant messages' reasoning: not append-only.
  tokenizer.chat_template = ("{% for m in messages %}{% if loop.last or m['role'] != "
                             "'assistant' %}{{ m['content'] }} {% endif %}{% endfor %}")
  chat = [{"role": "user", "content": "t9"}, {"role": "assistant", "content": "t10"}]
  with pytest.raises(ValueError, match="rewrites earlier messages"):
    rollout.observation_ids(tokenizer, chat, [{"role": "user", "content": "t11"}], [1],
                            ended=True)
