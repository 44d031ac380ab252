"""Parsing tool calls out of completions: ReAct lines and the JSON forms models write."""

import pytest

from amrsd.rewards.tool_calls import MAX_CALLS, Call, clean_tool_name, parse_calls


def test_react_pairs_in_order_with_multiline_json():
  text = ("Thought: two lookups.\nAction: getRate\nAction Input: {\"base\": \"USD\"}\n"
          "Observation: 1.1\nThought: now convert\n**Action:** `convert()`\n"
          "Action Input:\n{\n  \"amount\": 5,\n  \"to\": \"EUR\"\n}\nFinal Answer: done")
  assert parse_calls(text) == [Call("getRate", {"base": "USD"}),
                               Call("convert", {"amount": 5, "to": "EUR"})]


def test_react_input_forms():
  assert parse_calls("Action: listAll\nAction Input: {}") == [Call("listAll", {})]
  assert parse_calls("Action: listAll\nAction Input:\nObservation: x") == [Call("listAll", {})]
  assert parse_calls('Action: f\nAction Input: "{\\"a\\": 1}"') == [Call("f", {"a": 1})]
  assert parse_calls("Action: f\nAction_Input: {\"a\": [1, {\"b\": null}]}") == [
      Call("f", {"a": [1, {"b": None}]})]


def test_react_malformed_calls_keep_their_problem():
  assert parse_calls("Action: f\nThought: hm") == [Call("f", None, "has no Action Input")]
  assert parse_calls("Action: f\nAction Input: {a: 1}")[0].problem == (
      "has an Action Input that is not valid JSON")
  assert parse_calls("Action: f\nAction Input: 7")[0].problem == (
      "has an Action Input that is a JSON number, not an object")


def test_react_lines_win_over_json_calls():
  text = '{"name": "g", "arguments": {}}\nAction: f\nAction Input: {"x": 1}'
  assert parse_calls(text) == [Call("f", {"x": 1})]


@pytest.mark.parametrize("text", [
    '```json\n{"name": "f", "arguments": {"x": 1}}\n```',
    '{"tool": "f", "parameters": {"x": 1}}',
    '[{"type": "function", "function": {"name": "f", "arguments": "{\\"x\\": 1}"}}]',
    '{"tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}}]}',
    'I will call {"Action": "f", "Action_Input": "{\\"x\\": 1}"} now.',
])
def test_json_call_forms(text):
  assert parse_calls(text) == [Call("f", {"x": 1})]


def test_json_calls_several_and_non_calls_ignored():
  text = 'data {"a": 1} then [{"name": "f", "args": {}}, {"name": "g"}] and {"name": "h"}'
  assert [c.tool for c in parse_calls(text)] == ["f", "g", "h"]
  assert parse_calls('{"result": 3}') == []


def test_calls_are_capped():
  text = "Action: f\nAction Input: {}\n" * (MAX_CALLS * 10)
  assert len(parse_calls(text)) == MAX_CALLS + 1  # one past the cap: "too many" is known


def test_clean_tool_name():
  assert clean_tool_name(" `getWeather()`. ") == "getWeather"
  assert clean_tool_name('"search"') == "search"
