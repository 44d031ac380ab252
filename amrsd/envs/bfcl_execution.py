"""The bfcl_multi_turn environment's worker side: safe decoding, execution, the check.

Runs in a worker of amrsd.rewards.pool (time and memory limits), never in the trainer:
bfcl-eval runs calls with `eval` on the call text and its decoder `eval`s some argument
expressions, so no text the policy wrote reaches either. The text is parsed here with
`ast` and only calls of the episode's API methods with literal arguments (numbers,
strings, lists, dicts, tuples, sets, True/False/None) are rebuilt, with `repr`, into the
call strings bfcl-eval executes. Positional arguments are kept (bfcl's own decoder drops
them; its ground truth uses them, e.g. `sort('final_report.pdf')`).

Jobs are stateless: a step replays the episode's earlier calls on fresh API instances and
then runs the new ones (the APIs are deterministic: their random generators are seeded by
the scenario). bfcl-eval keeps instances in its module's globals under
"<model name>_<test id>_<class>_instance"; every job uses a model name of its own and
deletes those globals when done, so two episodes (or two jobs of one) never share state.
"""

import ast
import contextlib
import functools
import importlib
import inspect
import re
import uuid
import warnings

MAX_TEXT_CHARS = 16_384  # longer hostile text only costs the parser memory
MAX_CALLS = 128  # calls run per message at most (BFCL's longest turn has 34)
_SHOWN_CHARS = 200  # of a rejected call, in its observation
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
NOT_CALLS = ("Error: the message is not a Python list of function calls "
             "[func_name(param=value), ...]")


def parse_calls(text: str, functions) -> dict:
  """The calls in an assistant message, vetted against the names in `functions`.

  Returns {"ends_turn": True} for a message without calls (prose, "[]"), or
  {"ends_turn": False, "calls": [(shown text, call string to run or None, error or None)]}.
  A message that starts like a call list but does not parse is one call None with
  NOT_CALLS as its error (the turn goes on: the policy sees why).
  """
  text = _THINK.sub("", text[:MAX_TEXT_CHARS]).strip("`\n ")
  if "(" not in text:
    return {"ends_turn": True}
  listed = text if text.startswith("[") else "[" + text
  listed = listed if listed.endswith("]") else listed + "]"
  try:
    with warnings.catch_warnings():  # "invalid escape sequence" and such: the policy's text
      warnings.simplefilter("ignore")
      body = ast.parse(listed, mode="eval").body
    elements = body.elts if isinstance(body, ast.List) else None
  except (SyntaxError, ValueError, RecursionError, MemoryError):
    elements = None
  if elements is None or not all(isinstance(e, ast.Call) for e in elements):
    # bfcl ends the turn on text it cannot decode; text that opens a list meant calls.
    if text.startswith("["):
      return {"ends_turn": False, "calls": [("", None, NOT_CALLS)]}
    return {"ends_turn": True}
  calls = [_vetted(e, functions) for e in elements[:MAX_CALLS]]
  if len(elements) > MAX_CALLS:
    calls.append(("", None, f"Error: a message runs at most {MAX_CALLS} calls; the other "
                            f"{len(elements) - MAX_CALLS} did not run"))
  return {"ends_turn": False, "calls": calls}


def _vetted(call: ast.Call, functions) -> tuple:
  shown = _shown(call)
  if not isinstance(call.func, ast.Name) or call.func.id not in functions:
    return shown, None, (f"Error during execution: {_shown(call.func)} is not one of the "
                         "available functions")
  try:
    if any(k.arg is None for k in call.keywords) or any(isinstance(a, ast.Starred)
                                                        for a in call.args):
      raise ValueError("* and ** arguments")
    args = [repr(ast.literal_eval(a)) for a in call.args]
    args += [f"{k.arg}={ast.literal_eval(k.value)!r}" for k in call.keywords]
  except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
    return shown, None, ("Error during execution: arguments must be literal values "
                         "(numbers, strings, lists, dicts, True/False/None)")
  return shown, f"{call.func.id}({', '.join(args)})", None


def _shown(node) -> str:
  try:
    text = ast.unparse(node)
  except (ValueError, RecursionError):
    text = "this call"
  return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS - 3] + "..."


@functools.cache
def api_functions(classes: tuple) -> frozenset:
  """Public method names of bfcl's API classes (what bfcl-eval can call on them)."""
  from bfcl_eval.constants.executable_backend_config import CLASS_FILE_PATH_MAPPING
  names = set()
  for class_name in classes:
    module = importlib.import_module(CLASS_FILE_PATH_MAPPING[class_name])
    names |= {name for name, _ in inspect.getmembers(getattr(module, class_name),
                                                     inspect.isfunction)
              if not name.startswith("_")}
  return frozenset(names)


def run_step(args: dict) -> dict:
  """Job "bfcl_multi_turn.step". args: {"id", "initial_config", "involved_classes",
  "history": call strings run so far, in order, "text": the assistant's message}.

  Returns {"ends_turn": True}, or {"ends_turn": False, "calls": [{"call": shown text,
  "run": call string or None, "result": the API's answer or an error}]}.
  """
  parsed = parse_calls(args["text"], api_functions(tuple(args["involved_classes"])))
  if parsed["ends_turn"]:
    return parsed
  runnable = [run for _, run, _ in parsed["calls"] if run is not None]
  with _private_instances() as model_name:
    _execute(args, args["history"], model_name)
    results = iter(_execute(args, runnable, model_name))
  calls = [{"call": shown, "run": run, "result": error if run is None else next(results)}
           for shown, run, error in parsed["calls"]]
  return {"ends_turn": False, "calls": calls}


def check_episode(args: dict) -> dict:
  """Job "bfcl_multi_turn.check": bfcl-eval's multi_turn_checker on an episode.

  args: {"id", "initial_config", "involved_classes", "calls": per turn, per message, the
  call strings run, "answer": bfcl's ground truth per turn}. Returns {"valid"} and, when
  not valid, {"error_type", "turn": 0-based, "api": the class whose state differs,
  "attributes": its differing attributes} (no ground-truth values).
  """
  from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import multi_turn_checker
  entry = {k: args[k] for k in ("id", "initial_config", "involved_classes")}
  try:
    with _private_instances() as model_name:
      outcome = multi_turn_checker(args["calls"], args["answer"], entry,
                                   _category(args["id"]), model_name)
  except Exception as e:  # the checker's asserts; what the policy wrote must not crash it
    return {"valid": False, "error_type": f"checker error ({type(e).__name__})", "turn": None}
  if outcome["valid"]:
    return {"valid": True}
  message = outcome.get("error_message", "")
  turn = re.search(r"for turn (\d+)", message)
  api = re.search(r"Model instance for (\w+)", message)
  return {"valid": False, "error_type": outcome.get("error_type", ""),
          # A state mismatch names no turn; its execution log holds one entry per turn checked.
          "turn": int(turn.group(1)) if turn else len(outcome.get("execution_result", [])) - 1,
          "api": api.group(1) if api else None,
          "attributes": sorted(outcome.get("details", {}).get("differences", {}))}


def _execute(args, calls, model_name) -> list[str]:
  from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_utils import (
      execute_multi_turn_func_call)
  results, _ = execute_multi_turn_func_call(
      calls, args["initial_config"], args["involved_classes"], model_name, args["id"],
      long_context=_long_context(args["id"]))
  return results


def _category(row_id: str) -> str:
  return row_id.rsplit("_", 1)[0]


def _long_context(row_id: str) -> bool:
  # bfcl's own rule (its inference and checker): these categories load the long scenarios.
  return "long_context" in _category(row_id) or "composite" in _category(row_id)


@contextlib.contextmanager
def _private_instances():
  """A model name no other job uses; bfcl's instances made under it are deleted after."""
  from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_utils
  model_name = f"amrsd_{uuid.uuid4().hex}"
  try:
    yield model_name
  finally:
    instances = vars(multi_turn_utils)
    for key in [k for k in instances if k.startswith(model_name)]:
      del instances[key]
