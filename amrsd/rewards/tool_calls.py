"""Tool calls as models write them, parsed into (tool, arguments) pairs. Host side.

Two families of output are read:
  ReAct lines      Action: getWeather
                   Action Input: {"city": "Paris"}        (several pairs: several calls)
  JSON calls       {"name": "getWeather", "arguments": {"city": "Paris"}}, OpenAI's
                   {"function": {"name": ..., "arguments": "<JSON text>"}}, ToolAlpaca's
                   {"Action": ..., "Action_Input": ...}, lists of these, {"tool_calls": [...]},
                   inside ```json fences or not.
ReAct lines win when both are present (the tool-use prompt asks for them).

Hostile text stays cheap: only the first MAX_TEXT_CHARS characters are read, at most
MAX_DECODE_TRIES JSON values are decoded, nesting deeper than Python's recursion limit
fails as malformed, and at most MAX_CALLS calls are kept.
"""

import dataclasses
import json
import re

MAX_TEXT_CHARS = 32_768
MAX_DECODE_TRIES = 64
MAX_CALLS = 32

_MARKER = re.compile(
    r"^[ \t>*#-]*(?P<kind>action[ _]?input|action|observation|thought|final[ _]answer)"
    r"[ \t*]*:[ \t*]*", re.IGNORECASE | re.MULTILINE)
_NAME_KEYS = ("name", "tool", "tool_name", "function", "action", "api", "api_name")
_ARGUMENT_KEYS = ("arguments", "parameters", "args", "params", "input", "action_input",
                  "action input", "tool_input")
_DECODER = json.JSONDecoder()


@dataclasses.dataclass(frozen=True)
class Call:
  """One parsed call. arguments: the decoded JSON object, or None when it was missing,
  not valid JSON or not an object (`problem` then says which)."""
  tool: str
  arguments: dict | None
  problem: str = ""


def parse_calls(text: str) -> list[Call]:
  """The calls in a completion, in order (empty when it holds none)."""
  text = text[:MAX_TEXT_CHARS]
  calls = react_calls(text)
  return calls if calls else json_calls(text)


def react_calls(text: str) -> list[Call]:
  """`Action:` / `Action Input:` pairs; an Action without an input is a malformed call."""
  markers = list(_MARKER.finditer(text))
  calls = []
  for k, marker in enumerate(markers):
    if _kind(marker) != "action":
      continue
    end = markers[k + 1].start() if k + 1 < len(markers) else len(text)
    tool = clean_tool_name(text[marker.end():end].split("\n", 1)[0])
    following = markers[k + 1] if k + 1 < len(markers) else None
    if following is None or _kind(following) != "actioninput":
      calls.append(Call(tool, None, "has no Action Input"))
    else:
      calls.append(_with_arguments(tool, _decode_at(text, following.end())))
    if len(calls) > MAX_CALLS:
      break
  return calls


def json_calls(text: str) -> list[Call]:
  """Call-shaped JSON values anywhere in text (fenced or not), in order."""
  calls, tries, position = [], 0, 0
  opener = re.compile(r"\{|\[\s*\{")
  while tries < MAX_DECODE_TRIES and len(calls) <= MAX_CALLS:
    found = opener.search(text, position)
    if found is None:
      break
    tries += 1
    value, end = _decode_span(text, found.start())
    if end is None:
      position = found.start() + 1
      continue
    calls.extend(_calls_in(value))
    position = end
  return calls


def clean_tool_name(raw: str) -> str:
  """'`getWeather()`.' -> 'getWeather': quotes, backticks, call parentheses, end punctuation."""
  name = raw.strip().rstrip(".,;:").strip("`'\"* ")
  return re.sub(r"\(\s*\)$", "", name).strip()


def _kind(marker) -> str:
  return re.sub(r"[ _]", "", marker.group("kind").lower())


def _decode_at(text: str, start: int):
  """(value, problem) of the JSON value starting at text[start:] (spaces skipped).

  An empty input reads as {} (a tool without parameters); a JSON string holding JSON
  (double-encoded input) is decoded once more.
  """
  rest = text[start:].lstrip()
  if not rest or _MARKER.match(rest):
    return {}, ""
  value, end = _decode_span(rest, 0)
  if end is None:
    return None, "has an Action Input that is not valid JSON"
  if isinstance(value, str):
    inner, inner_end = _decode_span(value.strip(), 0)
    if inner_end is not None:
      value = inner
  return value, ""


def _decode_span(text: str, start: int):
  """(value, end) of one JSON value at text[start], or (None, None) when there is none.

  json's C scanner raises RecursionError on deep nesting and ValueError on integers
  longer than Python's digit limit; both count as malformed.
  """
  try:
    return _DECODER.raw_decode(text, start)
  except (ValueError, RecursionError):
    return None, None


def _with_arguments(tool: str, decoded) -> Call:
  value, problem = decoded
  if problem:
    return Call(tool, None, problem)
  if not isinstance(value, dict):
    return Call(tool, None, f"has an Action Input that is a JSON {json_type(value)}, "
                "not an object")
  return Call(tool, value)


def _calls_in(value) -> list[Call]:
  """Calls held by one decoded JSON value (a call, a list of calls, a tool_calls wrapper)."""
  if isinstance(value, list):
    return [call for item in value[:MAX_CALLS + 1] for call in _calls_in(item)]
  if not isinstance(value, dict):
    return []
  lowered = {str(key).lower(): item for key, item in value.items()}
  if isinstance(lowered.get("tool_calls"), list):
    return _calls_in(lowered["tool_calls"])
  if isinstance(lowered.get("function"), dict):  # OpenAI: {"type": "function", "function": {...}}
    return _calls_in(lowered["function"])
  name = next((lowered[k] for k in _NAME_KEYS if isinstance(lowered.get(k), str)), None)
  if name is None:
    return []
  key = next((k for k in _ARGUMENT_KEYS if k in lowered), None)
  if key is None:
    return [Call(clean_tool_name(name), {})]
  arguments = lowered[key]
  if isinstance(arguments, str):  # OpenAI and ToolAlpaca write the arguments as JSON text
    arguments, end = (_decode_span(arguments.strip(), 0) if arguments.strip() else ({}, 0))
    if end is None:
      return [Call(clean_tool_name(name), None, "has arguments that are not valid JSON")]
  return [_with_arguments(clean_tool_name(name), (arguments, ""))]


def json_type(value) -> str:
  """The JSON type name of a decoded value ("number" for int and float, not for bool)."""
  if isinstance(value, bool):
    return "boolean"
  if isinstance(value, (int, float)):
    return "number"
  return {str: "string", list: "array", dict: "object", type(None): "null"}[type(value)]
