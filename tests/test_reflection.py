"""Meta-Reflection phases and teacher contexts (host code)."""

import pytest

from amrsd import prompts, reflection

RECORD = {"problem": "What is 6 * 7?", "answer": "42", "solution": "6 * 7 = 42"}


def _packets(rewards, completions=None, feedback="answer 41 does not match"):
  completions = completions or [f"attempt {i}: 6 * 7 = 4{i}" for i in range(len(rewards))]
  return reflection.diagnose([RECORD], completions, rewards, [feedback] * len(rewards),
                             group_size=len(rewards)), completions


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


@pytest.mark.parametrize("hint", [
    "The result is 42.", "Is it 42.0?", "Write \\boxed{42}", "so 40 + 2 = 42 right"])
def test_leak_filter_rejects_the_answer_in_several_forms(hint):
  assert reflection.leaks(hint, ["42"], [])


def test_leak_filter_rejects_thousands_separators_and_allows_other_numbers():
  assert reflection.leaks("It should be 1,000 in total.", ["1000"], [])
  assert not reflection.leaks("Check the product of 6 and 7 again.", ["42"], [])
  assert not reflection.leaks("Try 420 first.", ["42"], [])


def test_leak_filter_lets_spelled_out_numbers_pass():
  # Documented limitation: spelled-out numbers are not matched.
  assert not reflection.leaks("Is it forty-two?", ["42"], [])


def test_leak_filter_rejects_long_ngram_copies():
  source = "first multiply the two numbers carefully and then add the carry to the tens digit"
  copied = "first multiply the two numbers carefully and then add the carry"
  assert reflection.leaks(copied, [], [source])
  assert not reflection.leaks("what happens to the carry in the tens place?", [], [source])


class ScriptedWriter:
  """Returns scripted hints per attempt and records every request."""

  def __init__(self, by_attempt):
    self.by_attempt, self.requests = by_attempt, []

  def __call__(self, requests, attempt):
    self.requests.append((attempt, requests))
    return self.by_attempt[attempt][:len(requests)]


def test_reflect_retries_a_leaking_hint_once_then_gives_up():
  packets, completions = _packets([0.0, 0.0])
  writer = ScriptedWriter({0: ["The answer is 42.", "Check 6 * 7 again."],
                           1: ["It is 42 for sure."]})
  hints, stats = reflection.reflect(writer, [RECORD], completions, packets, 2)
  assert hints == [None, "Check 6 * 7 again."]
  assert len(writer.requests[1][1]) == 1        # only the rejected one was retried
  assert (stats.hints_made, stats.hints_rejected, stats.hints_retried, stats.hints_empty) == \
      (1, 2, 1, 1)
  assert stats.leak_rate == pytest.approx(2 / 3)


def test_reflect_group_granularity_writes_one_hint_per_group():
  packets, completions = _packets([1.0, 0.0, 0.0, 1.0])
  writer = ScriptedWriter({0: ["Look at the tens digit."]})
  hints, stats = reflection.reflect(writer, [RECORD], completions, packets, 4,
                                    granularity="group")
  assert len(writer.requests[0][1]) == 1
  assert "attempt 1" in writer.requests[0][1][0][0]["content"]  # the first failed rollout
  assert hints == ["Look at the tens digit."] * 4
  assert stats.hints_made == 4


def test_hint_prompts_follow_the_packet_kind():
  packets, completions = _packets([1.0, 0.0])
  success = reflection.hint_prompt(RECORD, completions[0], packets[0])[0]["content"]
  failure = reflection.hint_prompt(RECORD, completions[1], packets[1])[0]["content"]
  assert "was correct" in success
  assert "accepted solution" in failure and completions[0] in failure
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
