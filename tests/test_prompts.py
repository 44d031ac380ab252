"""Prompt templates: per-row system prompts and per-domain reflection templates."""

import pytest

from amrsd import prompts, reflection


def test_chat_messages_put_the_rows_system_prompt_first():
  record = {"problem": "Which? A: x B: y", "system": "Answer in <answer>X</answer>."}
  assert prompts.chat_messages(record, "{problem}", "ignored") == [
      {"role": "system", "content": "Answer in <answer>X</answer>."},
      {"role": "user", "content": "Which? A: x B: y"}]
  assert prompts.chat_messages({"problem": "1+1", "system": None}, "{problem}!", "Be brief.") == [
      {"role": "system", "content": "Be brief."}, {"role": "user", "content": "1+1!"}]
  assert prompts.chat_messages({"problem": "1+1"}, "{problem}") == [
      {"role": "user", "content": "1+1"}]


def test_with_system_keeps_rows_without_a_teacher():
  assert prompts.with_system(None, "sys") is None
  assert prompts.with_system([{"role": "user", "content": "q"}], "") == [
      {"role": "user", "content": "q"}]


@pytest.mark.parametrize("verifier, words", [("mcq", "option"), ("tooluse", "documentation"),
                                             ("bfcl", "documentation")])
def test_domain_reflection_templates_fill_the_hint_prompts(verifier, words):
  templates = prompts.reflection_templates(verifier)
  record = {"problem": "Q?\nA: 1\nB: 2", "answer": "B"}
  for packet in (reflection.Packet(correct=True), reflection.Packet(False, feedback="wrong"),
                 reflection.Packet(False, peer="<answer>B</answer>")):
    (message,) = reflection.hint_prompt(record, "my attempt", packet, templates=templates)
    assert "Q?" in message["content"] and "my attempt" in message["content"]
    assert words in message["content"]


def test_multi_turn_reflection_templates_show_the_episode_and_forbid_the_calls():
  templates = prompts.reflection_templates("bfcl_multi_turn")
  assert set(templates) == {"reflect_with_peer", "reflect_with_feedback", "reflect_success"}
  fields = dict(problem="Move 'final_report.pdf' to 'temp'.",
                attempt="assistant: [cd(folder='document')]\ntool cd(folder='document'): {}\n"
                        "user: Now search the report.",
                feedback="turn 1 of 4: wrong state of GorillaFileSystem after the turn",
                peer="assistant: [mkdir(dir_name='temp')]")
  for name in templates:
    text = prompts.render(name, templates, **fields)
    assert fields["problem"] in text and fields["attempt"] in text
    assert "{" not in text.replace(fields["attempt"], "")
    assert (fields["peer"] in text) == (name == "reflect_with_peer")
    assert (fields["feedback"] in text) == (name != "reflect_success")
    assert prompts._TOOL_RULE in text or name == "reflect_success"
  record = {"problem": fields["problem"], "answer": "[]"}
  for packet in (reflection.Packet(correct=True), reflection.Packet(False, feedback="wrong"),
                 reflection.Packet(False, feedback="wrong", peer="assistant: [ls()]")):
    (message,) = reflection.hint_prompt(record, fields["attempt"], packet, templates=templates,
                                        attempt_max_chars=1000)
    assert "End of your episode" in message["content"]


def test_math_keeps_the_default_templates():
  assert prompts.reflection_templates("math") == {}
