"""Tool-use answers: the model's calls against the record's gold calls.

record["answer"]: a JSON list of {"Action": tool, "Action_Input": JSON text of the
arguments} (ToolAlpaca as SDPO converts it). Reward 1 when the predicted calls equal the
gold calls one to one as a multiset of (tool, arguments), order free.

Arguments compare as JSON values: key order and spacing do not matter, 5 equals 5.0,
but the string "5" does not equal the number 5, nor true the number 1. The tool
documentation in the prompt states each parameter's type, and an API handed "5" for an
integer rejects or misreads it; Python's own comparison of the decoded JSON (what the
published scorers do) agrees. Two readings of the data, both written into the reference
by its converter: an argument whose gold value is "" or null was not given by the user,
so the model may leave it out or give it empty; a gold call whose tool is prefixed
"[Optional]" may be made or left out.

Feedback names what is wrong (no call, malformed JSON, a tool the request does not need,
too many or too few calls, missing or unexpected argument names, a value of the wrong
JSON type or the wrong value) and never a gold tool name or value. A tool name the model
wrote itself is quoted when it is not a gold one: the prompt lists every tool anyway,
and "you called X, which is not needed here" points at the fix. Parameter names are
named too: they are the documented interface, not the answer. Any part of the feedback
that would contain a gold tool name or value is dropped. Ordinals are words, so no gold
number can appear by accident.
"""

import collections
import json

from amrsd.rewards import feedback as fb
from amrsd.rewards.tool_calls import MAX_CALLS, json_type, parse_calls

OPTIONAL_PREFIX = "[Optional]"
NO_CALL = ("no tool call found: write `Action: <tool name>` and then "
           "`Action Input: <JSON object of arguments>`")
GENERIC = "the tool calls do not match what the request needs"
_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
             "ninth", "tenth")
_MAX_NAMES = 5
MAX_DEPTH = 64  # of an arguments object; real APIs nest a few levels


def check_tooluse(completion: str, record: dict, time_limit: int | None = None, *,
                  merged: bool = False) -> fb.Verdict:
  """Reward 1.0 when the calls match the gold calls (see the module docstring).

  merged=True scores as some published reference code does, for comparing numbers
  only: the set of tools must match and all calls' arguments merged into one dict (later
  calls overwrite earlier ones) must match. It is wrong for two calls of one tool with
  different arguments (the first call's arguments are lost).
  """
  del time_limit
  gold = gold_calls(record["answer"])
  if gold is None:
    return fb.verdict_fail(fb.BAD_REFERENCE)
  secrets = _secrets(gold)
  calls = parse_calls(completion)
  if not calls:
    problems = [NO_CALL]
  elif len(calls) > MAX_CALLS:
    problems = ["far too many calls"]
  else:
    problems = [f"the {_ordinal(i)} call {call.problem}" for i, call in enumerate(calls)
                if call.problem]
    problems += [f"the {_ordinal(i)} call has arguments nested too deeply"
                 for i, call in enumerate(calls) if not call.problem and _too_deep(call.arguments)]
  if not problems:
    if merged:
      match = _merged_match(calls, gold)
    else:
      match = _multiset_match([(call.tool, _arguments_key(call.arguments)) for call in calls],
                              [(t, _arguments_key(a), optional) for t, a, optional in gold])
    if match:
      return fb.verdict_correct()
    problems = _diagnose(calls, gold)
  return fb.verdict_fail(fb.safe_message(problems, secrets, GENERIC))


def gold_calls(answer) -> list[tuple[str, dict, bool]] | None:
  """[(tool, arguments, optional)] of a record's answer; None when it cannot be read."""
  try:
    items = json.loads(answer) if isinstance(answer, str) else answer
    gold = []
    for item in items:
      tool, arguments = item["Action"], item.get("Action_Input", "{}")
      if isinstance(arguments, str):
        arguments = json.loads(arguments) if arguments.strip() else {}
      if not isinstance(tool, str) or not isinstance(arguments, dict):
        return None
      optional = tool.startswith(OPTIONAL_PREFIX)
      gold.append((tool.removeprefix(OPTIONAL_PREFIX).strip(), arguments, optional))
  except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
    return None
  return gold or None


def _multiset_match(predicted, expected) -> bool:
  have = collections.Counter(predicted)
  required = collections.Counter((tool, key) for tool, key, optional in expected if not optional)
  optional = collections.Counter((tool, key) for tool, key, opt in expected if opt)
  extra = have - required
  return not (required - have) and not (extra - optional)


def _merged_match(calls, gold) -> bool:
  merged_pred, merged_gold = {}, {}
  for call in calls:
    merged_pred.update(call.arguments)
  for _, arguments, optional in gold:
    if not optional:
      merged_gold.update(arguments)
  tools = {tool for tool, _, optional in gold if not optional}
  return ({call.tool for call in calls} == tools
          and _arguments_key(merged_pred) == _arguments_key(merged_gold))


def _arguments_key(arguments: dict):
  """Hashable, order-free form of an arguments object; unset ("" / null) ones dropped."""
  return frozenset((name, _value_key(value)) for name, value in arguments.items()
                   if not _unset(value))


def _value_key(value):
  if isinstance(value, dict):
    return ("object", frozenset((k, _value_key(v)) for k, v in value.items()))
  if isinstance(value, list):
    return ("array", tuple(_value_key(v) for v in value))
  return (json_type(value), value)  # 5 == 5.0 and hash alike; True is kept apart from 1


def _too_deep(value) -> bool:
  """Nesting deeper than MAX_DEPTH (checked without recursion, before anything recurses)."""
  stack = [(value, 1)]
  while stack:
    item, depth = stack.pop()
    if depth > MAX_DEPTH:
      return True
    if isinstance(item, dict):
      stack.extend((v, depth + 1) for v in item.values())
    elif isinstance(item, list):
      stack.extend((v, depth + 1) for v in item)
  return False


def _unset(value) -> bool:
  return value is None or value == ""


def _diagnose(calls, gold) -> list[str]:
  """What is wrong, in words the model can act on (unfiltered: fb.safe_message removes leaks)."""
  parts = []
  tools = {tool for tool, _, _ in gold}
  required = sum(not optional for _, _, optional in gold)
  if len(calls) < required:
    parts.append("too few calls: the request needs more of them")
  elif len(calls) > len(gold):
    parts.append("too many calls: the request needs fewer of them")
  unused = list(range(len(gold)))
  for i, call in enumerate(calls):
    if call.tool not in tools:
      what = f"uses {fb.shorten(call.tool)}" if call.tool else "names no tool"
      parts.append(f"the {_ordinal(i)} call {what}, which is not a tool this request needs")
      continue
    candidates = [j for j in unused if gold[j][0] == call.tool] or \
                 [j for j in range(len(gold)) if gold[j][0] == call.tool]
    j = min(candidates, key=lambda j: len(_argument_problems(call.arguments, gold[j][1])))
    if j in unused:
      unused.remove(j)
    problems = _argument_problems(call.arguments, gold[j][1])
    if problems:
      parts.append(f"the {_ordinal(i)} call: " + "; ".join(problems))
  if not parts and any(not gold[j][2] for j in unused):
    parts.append("a call the request needs is missing")
  return parts or [GENERIC]


def _argument_problems(predicted: dict, gold: dict) -> list[str]:
  given = {name for name, value in predicted.items() if not _unset(value)}
  needed = {name for name, value in gold.items() if not _unset(value)}
  problems = []
  if needed - given:
    problems.append(f"missing argument {_names(needed - given)}")
  if given - needed:
    problems.append(f"unexpected argument {_names(given - needed)}")
  for name in sorted(given & needed)[:_MAX_NAMES]:
    mine, theirs = predicted[name], gold[name]
    if json_type(mine) != json_type(theirs):
      problems.append(f"argument '{fb.shorten(name)}' is a JSON {json_type(mine)}, which is "
                      "the wrong type")
    elif _value_key(mine) != _value_key(theirs):
      problems.append(f"argument '{fb.shorten(name)}' has the wrong value")
  return problems


def _names(names) -> str:
  names = sorted(names)
  shown = ", ".join(f"'{fb.shorten(n)}'" for n in names[:_MAX_NAMES])
  return shown + (" and more" if len(names) > _MAX_NAMES else "")


def _ordinal(index: int) -> str:
  return _ORDINALS[index] if index < len(_ORDINALS) else "a later"


def _secrets(gold) -> list[str]:
  """Gold tool names and every leaf value of the gold arguments, as text."""
  return [tool for tool, _, _ in gold] + fb.leaf_texts([arguments for _, arguments, _ in gold])
