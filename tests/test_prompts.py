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


def test_math_keeps_the_default_templates():
  assert prompts.reflection_templates("math") == {}
