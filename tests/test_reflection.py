"""Meta-Reflection phases and teacher contexts (host code)."""

import types

import numpy as np
import pytest
from tokenizers import Tokenizer, models as tokenizer_models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from amrsd import prompts, reflection

RECORD = {"problem": "What is 6 * 7?", "answer": "42", "solution": "6 * 7 = 42"}


def _packets(rewards, completions=None, feedback="answer 41 does not match"):
  completions = completions or [f"attempt {i}: 6 * 7 = 4{i}" for i in range(len(rewards))]
  return reflection.diagnose([RECORD], completions, rewards, [feedback] * len(rewards),
                             group_size=len(rewards)), completions


def test_sdpos_teacher_reads_the_whole_peer_and_the_hint_prompt_its_end():
  long_peer = "<think>scratch</think>" + "".join(f"step {i}; " for i in range(200)) + "6 * 7 = 42"
  packets, _ = _packets([0.0, 1.0], completions=["6 * 7 = 41", long_peer])
  whole = long_peer.removeprefix("<think>scratch</think>")
  assert packets[0].peer == whole and len(whole) > 1800
  (teacher,) = reflection.teacher_contexts("peer", [RECORD], packets, [None, None], 2)[0]
  assert whole in teacher["content"] and "scratch" not in teacher["content"]
  (message,) = reflection.hint_prompt(RECORD, "6 * 7 = 41", packets[0], peer_max_chars=100)
  assert "..." + whole[-100:] in message["content"] and whole[-101:] not in message["content"]


def test_diagnose_never_uses_itself_as_peer():
  packets, completions = _packets([1.0, 0.0, 0.0, 1.0])
  assert packets[0].peer == completions[3]   # the only other success
  assert packets[3].peer == completions[0]
  assert packets[1].peer == completions[3]   # nearest success after it, cyclically
  assert packets[2].peer == completions[3]
  assert packets[0].correct and not packets[1].correct
  assert packets[0].feedback == "" and packets[1].feedback == "answer 41 does not match"


def test_diagnose_group_without_success_falls_back_to_reference():
  packets, _ = _packets([0.0, 0.0])
  assert all(p.peer is None and p.reference == RECORD["solution"] for p in packets)
  assert not any(p.empty for p in packets)


def test_diagnose_all_success_has_peers_and_no_feedback():
  packets, completions = _packets([1.0, 1.0, 1.0])
  assert [p.peer for p in packets] == [completions[1], completions[2], completions[0]]
  assert all(p.correct and not p.empty for p in packets)


def test_empty_packet_without_feedback_peer_or_reference():
  record = {"problem": "p", "answer": "1"}
  packets = reflection.diagnose([record], ["x", "y"], [0.0, 0.0], ["", ""], group_size=2)
  assert all(p.empty for p in packets)
  assert reflection.hint_prompt(record, "x", packets[0]) is None


def test_strip_thinking_removes_think_blocks_and_keeps_the_end():
  text = "<think>long scratch work</think>The answer is 12."
  assert reflection.strip_thinking(text, 100) == "The answer is 12."
  assert reflection.strip_thinking("abcdefghij", 4) == "...ghij"
  assert reflection.strip_thinking("Check it. <think>cut off mid-thought") == "Check it."
  assert reflection.strip_thinking("opened by the template</think> Check it.") == "Check it."


class ScriptedWriter:
  """Returns scripted hints per attempt (text, or (text, stop reason)) and records every
  request; stands in for the sampler where the sampler is not the point."""

  def __init__(self, by_attempt):
    self.by_attempt, self.requests = by_attempt, []

  def __call__(self, requests, attempt):
    self.requests.append((attempt, requests))
    rows = [r if isinstance(r, tuple) else (r, "eos") for r in self.by_attempt[attempt]]
    rows = rows[:len(requests)]
    return types.SimpleNamespace(texts=[t for t, _ in rows], stop_reasons=[s for _, s in rows])


def _reflect(writer, rewards, completions=None, **kwargs):
  packets, completions = _packets(rewards, completions)
  return reflection.reflect(writer, [RECORD], completions, packets, len(rewards),
                            rewards=rewards, **kwargs)


def test_reflect_retries_a_leaking_hint_once_then_gives_up():
  writer = ScriptedWriter({0: ["The answer is 42.", "Check 6 * 7 again.", "Yes, 6 * 7 = 42."],
                           1: ["It is forty-two for sure.", "Well done on the product."]})
  hints, stats = _reflect(writer, [0.0, 0.0, 1.0])
  assert hints == [None, "Check 6 * 7 again.", "Well done on the product."]
  assert len(writer.requests[1][1]) == 2        # only the rejected ones were retried
  assert (stats.hint_requests, stats.hints_made, stats.hints_rejected, stats.hints_retried,
          stats.hints_empty) == (5, 2, 3, 2, 1)
  assert stats.leak_rate == pytest.approx(3 / 5)
  with pytest.raises(ValueError, match="2 hints for 3 requests"):
    _reflect(ScriptedWriter({0: ["a", "b"]}), [0.0, 0.0, 1.0])


def test_sampled_retries_give_the_sequential_retry_result_from_one_sampler_call():
  firsts = ["The answer is 42.", "Check 6 * 7 again.", "Yes, 6 * 7 = 42."]
  seconds = ["It is forty-two for sure.", "never read", "Well done on the product."]
  calls = []

  def sample(prompts, n):
    calls.append((len(prompts), n))
    texts = [t for pair in zip(firsts, seconds) for t in pair][:2 * len(prompts)]
    mask = np.arange(len(texts))[:, None] >= np.arange(4)[None, :]  # row k: k+1 tokens, max 4
    return types.SimpleNamespace(texts=texts, stop_reasons=["eos"] * len(texts),
                                 completion_mask=mask.astype(np.int32))

  hints, stats = _reflect(reflection.SampledRetries(sample), [0.0, 0.0, 1.0])
  assert calls == [(3, 2)]                          # the retries came with the first tries
  assert hints == [None, "Check 6 * 7 again.", "Well done on the product."]
  assert (stats.hint_requests, stats.hints_made, stats.hints_rejected, stats.hints_retried,
          stats.hints_empty) == (5, 2, 3, 2, 1)     # as test_reflect_retries_... counts them
  assert stats.hint_tokens == 3 + 4                 # rows 2 (first try) and 5 (a retry)


def test_sampled_retries_match_retries_to_their_prompts_equal_ones_in_order():
  def sample(prompts, n):
    texts = [f"{p} draw {d}" for p in prompts for d in range(n)]
    return types.SimpleNamespace(texts=texts, stop_reasons=["eos"] * len(texts))

  writer = reflection.SampledRetries(sample)
  first = writer(["p", "q", "p"], 0)
  assert first.texts == ["p draw 0", "q draw 0", "p draw 0"] and first.completion_mask is None
  assert writer(["p", "p"], 1).texts == ["p draw 1", "p draw 1"]
  writer(["q"], 0)                                  # a new step forgets the last one's draws
  with pytest.raises(IndexError):
    writer(["p"], 1)


def test_hint_prompts_show_the_attempts_last_attempt_max_chars():
  long_attempt = "step " * 200 + "so the total is 41"
  for limit in (400, 60):
    writer = ScriptedWriter({0: ["Recount the last step."], 1: []})
    _reflect(writer, [0.0, 1.0], completions=[long_attempt, "6 * 7 = 42"],
             granularity="group", attempt_max_chars=limit)
    (_, (request,)), = writer.requests[:1]
    shown = request[0]["content"]
    assert ("..." + long_attempt[-limit:]) in shown
    assert long_attempt[-limit - 1:] not in shown


def test_reflect_retries_a_hint_cut_at_the_token_limit():
  writer = ScriptedWriter({0: [("Look at the tens digit and", "length")],
                           1: ["Look at the tens digit."]})
  hints, stats = _reflect(writer, [0.0, 1.0], granularity="group")
  assert hints == ["Look at the tens digit."] * 2
  assert (stats.hints_unfinished, stats.hints_rejected, stats.hint_requests) == (1, 0, 2)
  assert stats.leak_rate == 0.0


def test_reflect_strips_thinking_closed_or_not():
  writer = ScriptedWriter({0: ["<think>so it is 42</think>Check the carry.",
                               "Recount the tens.<think>the answer is 42, I should",
                               "<think>I will say 42 and"],
                           1: ["<think>Still thinking"]})
  hints, stats = _reflect(writer, [0.0, 0.0, 1.0])
  assert hints[:2] == ["Check the carry.", "Recount the tens."]
  assert hints[2] is None and stats.hints_unfinished == 2 and stats.hints_rejected == 0


def test_the_copy_rule_is_set_by_leak_ngram_and_leak_max_copied():
  # 5 of the hint's 9 distinct 8-word n-grams are in the successful peer (9 of 13 4-grams,
  # 1 of 5 12-grams).
  peer = "first write the two factors then multiply the tens then the units and add"
  hint = "write the two factors then multiply the tens then the units and check each step again"
  rewards, completions = [0.0, 1.0], ["6 * 7 = 41", peer]
  for kwargs, kept in (({}, False), ({"leak_max_copied": 0.6}, True),
                       ({"leak_ngram": 12}, True), ({"leak_ngram": 4}, False)):
    writer = ScriptedWriter({0: [hint, "Well done."], 1: [hint]})
    hints, _ = _reflect(writer, rewards, completions, **kwargs)
    assert (hints[0] == hint) is kept, kwargs


def test_group_leak_rate_counts_a_group_hint_once():
  writer = ScriptedWriter({0: ["It is 42."], 1: ["Look at the tens digit."]})
  hints, stats = _reflect(writer, [1.0, 0.0, 0.0, 1.0], granularity="group")
  assert len(writer.requests[0][1]) == 1
  assert "attempt 1" in writer.requests[0][1][0][0]["content"]  # the first failed rollout
  assert hints == ["Look at the tens digit."] * 4
  assert stats.hints_made == 4 and stats.hint_requests == 2
  assert stats.leak_rate == pytest.approx(0.5)


def test_zero_variance_groups_and_empty_packets_get_no_hint_request():
  records = [RECORD, {"problem": "p", "answer": "1"}, RECORD]
  completions = ["6 * 7 = 41", "6 * 7 = 42", "x", "y", "6 * 7 = 42", "6 * 7 = 42"]
  rewards = [0.0, 1.0, 0.0, 1.0, 1.0, 1.0]
  packets = reflection.diagnose(records, completions, rewards, ["wrong"] * 6, group_size=2)
  packets[2] = reflection.Packet(correct=False)  # nothing to reflect on
  assert reflection.needs_hint(packets, rewards, 2) == [True, True, False, True, False, False]
  writer = ScriptedWriter({0: ["Check the carry.", "Keep the carry.", "Well done."]})
  hints, stats = reflection.reflect(writer, records, completions, packets, 2, rewards=rewards)
  assert [len(r) for _, r in writer.requests] == [3]
  assert hints == ["Check the carry.", "Keep the carry.", None, "Well done.", None, None]
  assert stats.hints_skipped == 3 and stats.hints_empty == 3


def test_reflect_rejects_a_hint_that_copies_the_rollouts_own_response():
  response = "first I multiply six by seven and then I add the carry to the tens digit"
  writer = ScriptedWriter({0: ["First I multiply six by seven and then I add the carry", ""],
                           1: ["Which digit gets the carry?", "Good."]})
  hints, stats = _reflect(writer, [0.0, 1.0], completions=[response, "6 * 7 = 42"])
  assert hints == ["Which digit gets the carry?", "Good."]
  assert stats.hints_rejected == 1 and stats.hints_unfinished == 1


def test_multiple_choice_hints_are_judged_by_letter_and_option_text():
  record = {"problem": "Which organelle makes ATP?\nA: nucleus\nB: mitochondrion", "answer": "B"}
  packets = reflection.diagnose([record], ["A", "B"], [0.0, 1.0], ["wrong choice", ""], 2)
  writer = ScriptedWriter({0: ["Because energy matters, where is ATP made?",
                               "The mitochondrion does it."], 1: ["Are you sure?"]})
  hints, stats = reflection.reflect(writer, [record], ["A", "B"], packets, 2,
                                    rewards=[0.0, 1.0], verifier="mcq")
  assert hints == ["Because energy matters, where is ATP made?", "Are you sure?"]
  assert stats.hints_rejected == 1


def test_hint_length_in_tokens_comes_from_the_writers_mask():
  def write(requests, attempt):
    return types.SimpleNamespace(texts=["Check the carry."] * len(requests),
                                 stop_reasons=["eos"] * len(requests),
                                 completion_mask=np.array([[1, 1, 1, 1, 0]] * len(requests)))
  hints, stats = _reflect(write, [0.0, 1.0])
  assert stats.hint_tokens == 8 and stats.hint_tokens_mean == 4.0
  assert stats.hint_length_mean == len("Check the carry.")


def test_hint_prompts_follow_the_packet_kind():
  packets, completions = _packets([1.0, 0.0])
  success = reflection.hint_prompt(RECORD, completions[0], packets[0])[0]["content"]
  failure = reflection.hint_prompt(RECORD, completions[1], packets[1])[0]["content"]
  assert "was correct" in success
  assert "accepted solution" in failure and completions[0] in failure
  assert "The checker said: answer 41 does not match" in failure  # feedback beside the peer
  feedback_only = reflection.Packet(correct=False, feedback="no final answer found")
  text = reflection.hint_prompt(RECORD, "x", feedback_only)[0]["content"]
  assert "The checker said: no final answer found" in text


def test_teacher_contexts_per_kind():
  packets, _ = _packets([1.0, 0.0])
  hints = [None, "Check the product."]
  hint = reflection.teacher_contexts("hint", [RECORD], packets, hints, 2)
  assert hint[0] is None
  assert "Hint: Check the product." in hint[1][0]["content"]
  reference = reflection.teacher_contexts("reference", [RECORD], packets, hints, 2)
  assert all("Reference solution: 6 * 7 = 42" in r[0]["content"] for r in reference)
  peer = reflection.teacher_contexts("peer", [RECORD], packets, hints, 2)
  assert "answer 41 does not match" in peer[1][0]["content"]
  assert "A correct solution" in peer[1][0]["content"]
  assert reflection.teacher_contexts("none", [RECORD], packets, hints, 2) == [None, None]
  derive = reflection.teacher_contexts("derive", [RECORD], packets, hints, 2)
  assert "derive the answer yourself" in derive[0][0]["content"]
  with pytest.raises(ValueError, match="unknown teacher context 'ppo'"):
    reflection.teacher_contexts("ppo", [RECORD], packets, hints, 2)


def test_every_template_renders_for_a_sample_record():
  fields = dict(problem=RECORD["problem"], attempt="6 * 7 = 41", peer="6 * 7 = 42",
                feedback="answer 41 does not match", hint="check 6 * 7",
                reference=RECORD["solution"])
  for name in prompts.TEMPLATES:
    text = prompts.render(name, None, **fields)
    assert "{" not in text.replace("\\boxed{", "") and text.strip()


def test_template_override_and_missing_field_error():
  assert prompts.render("task", {"task": "Q: {problem}"}, problem="1+1") == "Q: 1+1"
  with pytest.raises(KeyError, match="uses field {answer}"):
    prompts.render("task", {"task": "{answer}"}, problem="1+1")


def _word_tokenizer(chat_template):
  words = ["<pad>", "<eos>", "<unk>"] + "user assistant <think> </think> Problem: p".split()
  backend = Tokenizer(tokenizer_models.WordLevel({w: i for i, w in enumerate(words)},
                                                 unk_token="<unk>"))
  backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
  tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>",
                                      pad_token="<pad>", unk_token="<unk>")
  tokenizer.chat_template = chat_template
  return tokenizer


# The generation-prompt part of Qwen3's chat template: thinking off writes an empty block.
QWEN3_STYLE = ("{% for m in messages %}{{ m['role'] }} {{ m['content'] }} {% endfor %}"
               "{% if add_generation_prompt %}assistant {% if enable_thinking is defined and "
               "enable_thinking is false %}<think> </think> {% endif %}{% endif %}")
PLAIN = ("{% for m in messages %}{{ m['role'] }} {{ m['content'] }} {% endfor %}"
         "{% if add_generation_prompt %}assistant {% endif %}")


def test_hint_prompts_switch_thinking_off_where_the_template_has_the_switch():
  packets, completions = _packets([0.0, 1.0])
  qwen = reflection.hint_prompt(RECORD, completions[0], packets[0],
                                tokenizer=_word_tokenizer(QWEN3_STYLE))
  assert qwen.endswith("assistant <think> </think> ")
  plain_tokenizer = _word_tokenizer(PLAIN)
  plain = reflection.hint_prompt(RECORD, completions[0], packets[0], tokenizer=plain_tokenizer)
  messages = reflection.hint_prompt(RECORD, completions[0], packets[0])
  assert plain == plain_tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                      tokenize=False)


@pytest.mark.slow
def test_reflect_with_the_real_sampler(smollm):
  from amrsd.sampling import Sampler
  model, tokenizer = smollm
  sampler = Sampler(model, tokenizer, prompt_buckets=(256,))
  sent = []

  def write(requests, attempt):
    sent.extend(requests)
    return sampler.generate(requests, max_new_tokens=8, temperature=0.7, seed=attempt)

  records = [RECORD, {"problem": "What is 3 + 4?", "answer": "7", "solution": "3 + 4 = 7"}]
  completions = ["6 * 7 = 41", "6 * 7 = 42", "3 + 4 = 7", "3 + 4 = 7"]
  rewards = [0.0, 1.0, 1.0, 1.0]
  packets = reflection.diagnose(records, completions, rewards, ["answer 41 is wrong", "", "", ""],
                                2)
  hints, stats = reflection.reflect(write, records, completions, packets, 2, rewards=rewards,
                                    tokenizer=tokenizer)
  assert hints[2:] == [None, None] and stats.hints_skipped == 2   # zero-variance group
  assert all(isinstance(r, str) and "<|im_start|>assistant" in r for r in sent)
  assert 2 <= stats.hint_requests == len(sent) <= 4
  made = [h for h in hints if h is not None]
  assert stats.hints_made == len(made)
  # 8 new tokens cut most hints off: those are retried, never accepted.
  assert stats.hints_unfinished + stats.hints_rejected + len(made) == stats.hint_requests
  assert stats.hint_tokens <= 8 * len(made) and (not made or stats.hint_tokens > 0)
