"""Berkeley Function Calling Leaderboard rows, scored by the bfcl-eval package itself.

The completion is decoded with bfcl-eval's prompting decoder (Python call syntax,
`[f(a=1), g(b="x")]`) and checked by its AST checker against the row's possible answers,
as its own evaluation runner does for prompting models. Nothing here re-implements a check.

One import is replaced: bfcl_eval.eval_checker.ast_eval.ast_checker imports
bfcl_eval.constants.model_config, which imports a handler for every vendor API (anthropic,
openai, mistralai, cohere, google-genai, boto3, faiss, sentence-transformers, ...), none of
which the checker runs. The checker reads that table only to ask whether a model's API
turns "." in function names into "_" (`underscore_to_dot`); a prompting model writes names
as given, so the table put in its place answers False for every model.

record: {"answer": JSON of bfcl's "ground_truth", "functions": JSON of the row's "function"
list, "category": a bfcl test category ("simple_python", "parallel", "live_multiple"...)}.
Feedback is bfcl's error type in words; its error messages quote the possible answers,
so they are never passed on.
"""

import functools
import json
import re
import sys
import types

from amrsd.rewards import feedback as fb

MODEL_NAME = "amrsd-prompting"  # the name the checker is given; only the table above reads it
MAX_TEXT_CHARS = 16_384  # Python's parser on longer hostile text costs memory for nothing
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
# Error types of the checker (prefix before ":"), in words the policy can act on.
_PROBLEMS = {
    "ast_decoder": "the output is not a Python list of function calls, [name(argument=value), ...]",
    "simple_function_checker": "a call is wrong",
    "multiple_function_checker": "a call is wrong",
    "parallel_function_checker_no_order": "the set of calls is wrong",
    "type_error": "an argument has the wrong type",
    "value_error": "an argument has the wrong value",
}
_DETAILS = {
    "wrong_func_name": "wrong function name",
    "wrong_count": "wrong number of calls",
    "missing_required": "a required argument is missing",
    "unexpected_param": "an argument the function does not take",
    "missing_optional": "an argument the request needs is missing",
    "cannot_find_match": "a call matches none of the expected ones",
    "dict_key": "a dict argument has missing or unexpected keys",
    "list_dict_count": "a list argument has the wrong number of items",
}


def check_bfcl(completion: str, record: dict, time_limit: int | None = None) -> fb.Verdict:
  """Reward 1.0 when bfcl-eval's AST checker accepts the decoded calls."""
  del time_limit
  try:
    ground_truth = json.loads(record["answer"])
    functions = json.loads(record["functions"])
    category = record["category"]
  except (KeyError, TypeError, ValueError):
    return fb.verdict_fail(fb.BAD_REFERENCE)
  checker, decode, is_call_list, language = _bfcl()
  text = _THINK.sub("", completion[:MAX_TEXT_CHARS]).strip()
  try:
    decoded = decode(text)
  except Exception:  # bfcl's decoder raises bare Exceptions on bad syntax
    decoded = None
  if not is_call_list(decoded):
    problem = _PROBLEMS["ast_decoder"]
  else:
    try:
      result = checker(functions, decoded, ground_truth, language, category, MODEL_NAME)
    except Exception as e:  # e.g. a value the checker cannot type
      return fb.verdict_fail(f"the calls could not be checked ({type(e).__name__})")
    if result["valid"]:
      return fb.verdict_correct()
    problem = _words(result.get("error_type", ""))
  # Gold function names and values; the ast_decoder hint's wording could hold one ("all").
  secrets = [name for call in ground_truth for name in call] + fb.leaf_texts(ground_truth)
  return fb.verdict_fail(fb.safe_message([problem], secrets, "the calls are wrong"))


def _words(error_type: str) -> str:
  kind, _, detail = error_type.partition(":")
  problem = _PROBLEMS.get(kind, "the calls are wrong")
  extra = next((text for key, text in _DETAILS.items() if key in detail), None)
  return f"{problem}: {extra}" if extra else problem


@functools.cache
def _bfcl():
  """(ast_checker, decoder, format check, Language.PYTHON) from bfcl-eval (imported once)."""
  name = "bfcl_eval.constants.model_config"
  if name not in sys.modules:
    table = types.ModuleType(name)
    table.MODEL_CONFIG_MAPPING = _NoDotRenaming()
    sys.modules[name] = table
  try:
    from bfcl_eval.constants.enums import Language
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
    from bfcl_eval.model_handler.utils import default_decode_ast_prompting
    from bfcl_eval.utils import is_function_calling_format_output
  except ImportError as e:
    raise ImportError(f"the bfcl verifier needs bfcl-eval and the parsers its decoder "
                      f"imports ({e}); see launch/setup.sh") from e
  return ast_checker, default_decode_ast_prompting, is_function_calling_format_output, \
      Language.PYTHON


class _NoDotRenaming(dict):
  """Stands in for bfcl's model table: no model renames dots in function names."""

  def __missing__(self, model_name):
    return types.SimpleNamespace(underscore_to_dot=False)
