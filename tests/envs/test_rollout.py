"""Multi-turn rollouts on one sampler session: real BFCL episodes, the chat's token layout."""

import numpy as np
import pytest

from amrsd import envs
from amrsd.envs import rollout
from amrsd.sampling import Sampler
from tests.sampling.test_sampler import full_forward

EPISODES = ["multi_turn_base_10", "multi_turn_miss_func_0"]


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


def test_the_shipped_chatml_template_only_appends_and_groups_tool_results(smollm):
  """model.chat_template = chatml_append (for models whose own template rewrites past
  messages): an episode of calls, results and a next user turn continues on the cache."""
  import copy
  from amrsd import config as config_lib
  tokenizer = copy.deepcopy(smollm[1])
  with open(config_lib.chat_template_path("chatml_append")) as f:
    tokenizer.chat_template = f.read()
  eos = [tokenizer.convert_tokens_to_ids("<|im_end|>")]
  chat = [{"role": "system", "content": "Tools: ls, cd."},
          {"role": "user", "content": "List the files."},
          {"role": "assistant", "content": "<think>ls first</think>[ls(), cd(folder='a')]"}]
  results = [{"role": "tool", "name": "ls()", "content": "{\"files\": []}"},
             {"role": "tool", "name": "cd(folder='a')", "content": "{\"cwd\": \"a\"}"}]
  first = tokenizer.decode(rollout.observation_ids(tokenizer, chat, results, eos, ended=True))
  assert first == ("\n<|im_start|>user\n<tool_response>\n{\"files\": []}\n</tool_response>\n"
                   "<tool_response>\n{\"cwd\": \"a\"}\n</tool_response><|im_end|>\n"
                   "<|im_start|>assistant\n")
  chat += results + [{"role": "assistant", "content": "Done."}]
  turn = [{"role": "user", "content": "Now go back."}]
  second = tokenizer.decode(rollout.observation_ids(tokenizer, chat, turn, eos, ended=False))
  assert second == "<|im_end|>\n<|im_start|>user\nNow go back.<|im_end|>\n<|im_start|>assistant\n"
  # Past thinking stays as written (a template that drops it is refused, test above).
  assert "<think>ls first</think>" in tokenizer.apply_chat_template(chat, tokenize=False)
