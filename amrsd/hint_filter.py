"""The hint leak filter (docs/algorithms.md 3.1): does a Meta-Reflection hint give the answer away?

A hint leaks when it states a gold answer in any written form, or when it copies long
n-grams (8-grams, 50 %) from a source the teacher must not see through it: the accepted
peer, the reference solution, the rollout's own response. What "any written form" means
depends on the verifier:

- math (every numeric verifier): each answer-like span of the hint (numbers with or
  without a leading zero or thousands separators, a/b, \\frac-family, \\sqrt, \\boxed{...},
  $...$, numbers spelled out in words) is compared with the gold by mathematical
  equivalence, signs ignored (a hint that gives |gold| gives the answer). Exact rationals
  are compared in-process; anything else goes to math-verify in the verifier pool, under
  its hard time limit. Spans are split at separators, so "40-42" and "(1,42)" contain 42.
- mcq: the gold letter where it stands as an answer, never inside a word or as the
  article "A"; the gold option's text, case- and space-insensitive.
- tool calls (tooluse, tooluse_merged; bfcl, whose gold lists every possible value of each
  argument; bfcl_multi_turn, whose gold is the call strings of every turn): a gold tool
  name or a gold argument value (numbers >= MIN_TOOL_NUMBER, strings of MIN_TOOL_STRING
  characters or more with a letter or digit). A name made of several words (snake_case,
  camelCase, a dotted "module.function") counts anywhere, written with any case and any
  "_", "-" or space between its words ("."/"_" or nothing between dotted parts, whose last
  part also counts by itself). A name that is one plain word ("find", "sort", "cat", "tail")
  is also an ordinary word of a hint, so it counts only where it stands as code: followed
  by "(", in backticks or quotes, after call/use/run/invoke/execute/try, before
  command/tool/function/method, or before a shell argument ("cd ..", "ls -a"); one without
  a vowel ("cd", "ls", "mv", "wc") is no word and also counts anywhere in lower case.
"""

import ast
import fractions
import functools
import json
import re
import unicodedata

from text_to_num import alpha2digit

from amrsd.rewards import extract
from amrsd.rewards import feedback as fb

# A comparison math-verify could not finish counts as a leak: retrying costs one hint,
# showing the answer costs the method.
UNDECIDED = (fb.TIMED_OUT, fb.OUT_OF_MEMORY, fb.WORKER_DIED)
# Tool-call argument values that are not checked: they cannot be told apart from ordinary
# words and counts in a hint ("one call", "the first page", "true"), and carry next to
# nothing the policy could not guess.
MIN_TOOL_NUMBER = 2
MIN_TOOL_STRING = 2

_NUMBER = re.compile(r"(?<![\w.])(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)"
                     r"(?!\d|,\d{3}|(?:st|nd|rd|th)s?\b)")  # ordinals are not values
_RATIO = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)(?![\d.]\d)")
_POWER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*\^\s*\{?\s*(\d+)\s*\}?")
# Exponents and indices ("x^2", "a_{12}") are not values of their own.
_SCRIPT = re.compile(r"[\^_]\s*\{?\s*\d+\s*\}?")
_ENUMERATOR = re.compile(r"(?m)^\s*\d+[.)](?=\s)")
_LATEX_VALUE = re.compile(r"\\(?:[dt]?frac|sqrt|pi|boxed|fbox)(?![A-Za-z])")
_DELIMITED = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)
_PERCENT = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(?:\\?%|percent\b)")
# Words spelled out as numbers (text2num writes "two thirds" as "2 3rds", "a third" as
# "a 3rd" and leaves "a half" as it is).
_SPELLED_FRACTION = re.compile(r"\b(\d+|an?) (half|halves|quarters?|([3-9]|\d\d+)(?:rd|th)s?)\b",
                               re.IGNORECASE)
# "one" as a pronoun ("the one", "one of them") is not a count.
_PRONOUN_ONE = re.compile(r"\b(?:(?<=the )|(?<=this )|(?<=that )|(?<=which )|(?<=each )|"
                          r"(?<=every )|(?<=any )|(?<=no ))one\b|\bone(?= of\b| another\b)",
                          re.IGNORECASE)
_OPERATOR = re.compile(r"[+*=<>]|\\(?:times|cdot|div|pm|le|ge|neq)(?![A-Za-z])|(?<=[\w})])\s*-")
_LATEX_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox|operatorname)\s*\{([^{}]*)\}")
# Multiple choice: the letter in a position where it is an answer.
_LETTER_FOLLOWERS = ("is|was|are|were|and|or|vs|versus|seems|looks|would|could|should|must|"
                     "might|can|will|fits|matches|gives|works|instead")


def leaks(hint: str, answers, sources=(), *, verifier: str = "math", ngram: int = 8,
          max_copied: float = 0.5) -> bool:
  """True when `hint` gives a gold answer away or copies a source.

  answers: every gold form, or one (math: the answer; mcq: the letter and the option's
  text; tool calls: the gold calls, e.g. the JSON list of {"Action", "Action_Input"} or
  gold_answers' {"name", "arguments"} dicts). sources: texts the hint must not copy:
  max_copied of its distinct ngram-token n-grams found in one source is a copy.
  verifier: the verifier's name; "mcq" and the tool-call verifiers (_RULES) have their
  own rules, every other name is numeric (math).
  """
  if not isinstance(hint, str):
    raise TypeError(f"leaks: hint must be str, got {type(hint).__name__}")
  if isinstance(answers, (str, dict)):
    answers = [answers]
  answers = [a for a in answers if a is not None]
  states_gold = _RULES.get(verifier, _states_math_answer)
  return states_gold(hint, answers) or copies(hint, sources, ngram=ngram,
                                              max_copied=max_copied)


def gold_answers(record: dict, verifier: str) -> list:
  """Every gold form of a record: its answer; for mcq also the gold option's text, read
  from record["options"] (a list or a letter -> text dict) or from the problem's
  "B: text" / "(B) text" lines; for bfcl and bfcl_multi_turn the gold calls as
  {"name", "arguments"} dicts (bfcl: every possible value of an argument in a list;
  bfcl_multi_turn: the call strings of every turn parsed, positional arguments keyed by
  their position; a call string that does not parse stays a plain value)."""
  answer = record.get("answer")
  if answer is None or not str(answer).strip():
    return []
  forms = _GOLD_FORMS.get(verifier)
  return forms(answer, record) if forms else [str(answer).strip()]


def _choice_golds(answer, record: dict) -> list[str]:
  letter = str(answer).strip().strip("()").upper()
  options = record.get("options") or record.get("choices")
  if isinstance(options, dict):
    text = options.get(letter)
  elif isinstance(options, (list, tuple)) and len(letter) == 1:
    index = ord(letter) - ord("A")
    text = options[index] if 0 <= index < len(options) else None
  else:
    line = re.search(rf"(?m)^[ \t]*\(?{re.escape(letter)}\s*[:.)]\s*(\S.*?)\s*$",
                     str(record.get("problem", "")))
    text = line.group(1) if line else None
  return [letter] + ([str(text)] if text else [])


def _bfcl_calls(answer) -> list:
  """Gold calls of BFCL's single-turn ground truth, [{function_name: {argument: [possible
  values]}}] (or its JSON); calls already read ({"name", ...}) stay as they are."""
  answer = _json(answer)
  if isinstance(answer, str):
    return [answer.strip()] if answer.strip() else []
  calls = []
  for item in answer if isinstance(answer, list) else [answer]:
    if isinstance(item, dict) and not {"name", "Action"} & set(item):
      calls += [{"name": str(name), "arguments": arguments} for name, arguments in item.items()]
    elif item is not None:
      calls.append(item)
  return calls


def _call_strings(answer) -> list:
  """Gold calls of BFCL's multi-turn ground truth, a list per turn of call strings
  ("cd(folder='x')"), or its JSON; calls already read stay as they are."""
  answer = _json(answer)
  if isinstance(answer, str):
    return [_parse_call(answer)] if answer.strip() else []
  calls = []
  for item in answer if isinstance(answer, list) else [answer]:
    if isinstance(item, (list, str)):
      calls += _call_strings(item)
    elif item is not None:
      calls.append(item)
  return calls


def _json(answer):
  if not isinstance(answer, str):
    return answer
  try:
    return json.loads(answer)
  except ValueError:
    return answer


def _parse_call(text: str):
  """{"name", "arguments"} of a Python call string ("math.factorial(number=5)",
  "sort('a.txt')"), arguments read with ast.literal_eval (their source text where they are
  not literals); the text itself when it is not one call."""
  try:
    node = ast.parse(text.strip(), mode="eval").body
  except (SyntaxError, ValueError):
    return text
  if not isinstance(node, ast.Call) or not isinstance(node.func, (ast.Name, ast.Attribute)):
    return text
  arguments = {str(k): _literal(a) for k, a in enumerate(node.args)}
  arguments.update({kw.arg or "**": _literal(kw.value) for kw in node.keywords})
  return {"name": ast.unparse(node.func), "arguments": arguments}


def _literal(node):
  try:
    return ast.literal_eval(node)
  except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
    return ast.unparse(node)


def copies(hint: str, sources, *, ngram: int = 8, max_copied: float = 0.5) -> bool:
  """True when max_copied of the hint's distinct word n-grams appear in one source.

  Words are lower-cased runs of letters/digits and single punctuation marks, so changed
  spacing or case does not hide a copy. A hint shorter than ngram words copies nothing.
  """
  grams = _ngrams(hint, ngram)
  if not grams:
    return False
  return any(len(grams & _ngrams(source, ngram)) >= max_copied * len(grams)
             for source in sources if source)


def _ngrams(text: str, n: int) -> set:
  words = re.findall(r"\w+|[^\w\s]", text.lower())
  return {tuple(words[k:k + n]) for k in range(len(words) - n + 1)}


# -- math ----------------------------------------------------------------------------

def _states_math_answer(hint: str, answers) -> bool:
  golds = [g for g in (_unsigned(_clean_gold(str(a))) for a in answers) if g]
  if not golds:
    return False
  spans = answer_spans(hint)
  symbolic = []
  for gold in golds:
    if _has_words(gold) and contains_phrase(hint, _LATEX_TEXT.sub(r"\1", gold)):
      return True
    gold_value = _rational(gold)
    gold_is_expression = _OPERATOR.search(gold) is not None
    for span, is_expression in spans:
      if is_expression and not gold_is_expression:
        continue
      value = _rational(span)
      if value is None or gold_value is None:
        symbolic.append((span, gold))
      elif value == gold_value:
        return True
  return _any_equivalent(symbolic)


@functools.lru_cache(maxsize=1024)
def answer_spans(hint: str) -> tuple[tuple[str, bool], ...]:
  """Answer-like spans of a hint, unsigned and sorted: (text, is_expression).

  is_expression marks a $...$ span with an operator at its top level ("$6 \\times 7$"):
  it is compared whole only with golds that are expressions themselves; its numbers are
  spans of their own either way. List enumerators ("1. ", "2) " at a line start) are
  not answers.
  """
  # LaTeX thousands separators ("1{,}000", "1\\,000") read as plain ones.
  text = re.sub(r"(?<=\d)(?:\{,\}|\\,)(?=\d{3})", ",", hint.replace("\u2212", "-"))
  text = _ENUMERATOR.sub(" ", text)
  spans = set()
  for match in _DELIMITED.finditer(text):
    content = _unsigned(next(g for g in match.groups() if g is not None).strip())
    if content:
      spans.add((content, _OPERATOR.search(_top_level(content)) is not None))
  # A fraction or root is one value: its digits are not spans of their own ("\\frac{1}{2}"
  # does not state 2), so each is blanked once read.
  latex, text = _latex_values(text)
  spans |= {(s, False) for s in latex}
  spans |= {(f"{m.group(1)}/{m.group(2)}", False) for m in _RATIO.finditer(text)}
  spans |= {(f"{m.group(1)}^{m.group(2)}", False) for m in _POWER.finditer(text)}
  text, fractions_in_words = _words_to_digits(_SCRIPT.sub(" ", _RATIO.sub(" ", text)))
  spans |= {(s, False) for s in fractions_in_words}
  spans |= {(m.group(0), False) for m in _NUMBER.finditer(text)}
  # "50%" is also 1/2; "½" is a character of its own.
  spans |= {(f"{m.group(1)}/100", False) for m in _PERCENT.finditer(text)}
  spans |= {(str(fractions.Fraction(unicodedata.numeric(ch)).limit_denominator(100)), False)
            for ch in text if unicodedata.name(ch, "").startswith("VULGAR FRACTION")}
  return tuple(sorted(spans))


def _latex_values(text: str) -> tuple[list[str], str]:
  r"""(spans, text with the values blanked): \frac{a}{b} (d/t variants, \frac12), roots
  and \pi with a coefficient or a divisor ("2\sqrt{3}", "\sqrt{2}/2", "\pi/4"), and the
  contents of \boxed{x} or \boxed x (left in the text: a box holds anything)."""
  out, blanked = [], list(text)
  for match in _LATEX_VALUE.finditer(text):
    command, start, end = match.group(0), match.start(), match.end()
    if command in (r"\boxed", r"\fbox"):
      arg, _ = _argument(text, end)
      bare = re.match(r"\s*([^\s${}]+)", text[end:])
      content = arg if arg is not None and text[end:].lstrip().startswith("{") else (
          bare.group(1) if bare else None)
      if content and content.strip():
        out.append(_unsigned(content.strip()))
      continue
    if command == r"\sqrt" and text[end:end + 1] == "[":
      end = max(end, text.find("]", end) + 1)
    arg = ""
    for _ in range(2 if command.endswith("frac") else 0 if command == r"\pi" else 1):
      arg, end = _argument(text, end)
      if arg is None:
        break
    if arg is None:
      continue
    if not command.endswith("frac"):
      coefficient = re.search(r"\d+(?:\.\d+)?\s*$", text[:start])
      divisor = re.match(r"\s*/\s*\d+(?:\.\d+)?", text[end:])
      start = coefficient.start() if coefficient else start
      end += divisor.end() if divisor else 0
    out.append(text[start:end].strip())
    blanked[start:end] = " " * (end - start)
  return out, "".join(blanked)


def _argument(text: str, i: int):
  """(argument, end) of a LaTeX command argument at text[i:]: {balanced} or one character."""
  while i < len(text) and text[i] == " ":
    i += 1
  if i >= len(text):
    return None, i
  if text[i] != "{":
    return (text[i], i + 1) if text[i].isalnum() else (None, i)
  depth = 0
  for j in range(i, len(text)):
    depth += {"{": 1, "}": -1}.get(text[j], 0)
    if depth == 0:
      return text[i + 1:j], j + 1
  return None, i


def _words_to_digits(text: str) -> tuple[str, list[str]]:
  """(text with numbers written in words as digits, the fractions written in words):
  "forty-two" -> "42", "two thirds" -> "2/3"."""
  if not re.search(r"[A-Za-z]{3}", text):
    return text, []
  words = _PRONOUN_ONE.sub("", re.sub(r"(?<=[A-Za-z])-(?=[A-Za-z])", " ", text))
  converted = alpha2digit(words, "en", threshold=0)
  spans = []
  for match in _SPELLED_FRACTION.finditer(converted):
    word, ordinal = match.group(2).lower(), match.group(3)
    denominator = 2 if word.startswith("hal") else 4 if word.startswith("quarter") else int(ordinal)
    numerator = match.group(1) if match.group(1).isdigit() else "1"
    spans.append(f"{numerator}/{denominator}")
  return converted, spans


def _top_level(latex: str) -> str:
  """The text outside any {...} group (operators inside \\frac{..}{..} are not top level)."""
  out, depth = [], 0
  for ch in latex:
    depth += {"{": 1, "}": -1}.get(ch, 0)
    if depth == 0 and ch not in "{}":
      out.append(ch)
  return "".join(out)


def _clean_gold(answer: str) -> str:
  """The gold as a bare value: no box, math delimiters, spacing commands, $ or %, degrees."""
  answer = answer.replace("\u2212", "-").strip()
  if "\\boxed" in answer or "\\fbox" in answer:
    answer = extract.boxed_answer(answer) or answer
  answer = re.sub(r"\\[,!;: ]|\\?[$%]|\^\{?\\circ\}?|\u00b0|\\(?:left|right)(?![a-z])", "", answer)
  return answer.removeprefix("\\(").removesuffix("\\)").strip().rstrip(".")


def _unsigned(text: str) -> str:
  return re.sub(r"^[-+\s]+", "", text)


def _has_words(gold: str) -> bool:
  r"""Golds with words or variables ("\text{Evelyn}", "p - q") also match as text."""
  plain = _LATEX_TEXT.sub(r"\1", gold)
  return "\\" not in plain and re.search(r"[A-Za-z]", plain) is not None


def _rational(text: str):
  """The exact value of a number, a/b, a^b (b <= 64) or \\frac{a}{b} written with plain
  digits, else None."""
  text = re.sub(r"\s+", "", text)
  power = re.fullmatch(r"(\d+(?:\.\d+)?)\^\{?(\d+)\}?", text)
  if power:
    exponent = int(power.group(2))
    return fractions.Fraction(power.group(1)) ** exponent if exponent <= 64 else None
  if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", text):
    text = text.replace(",", "")
  frac = re.fullmatch(r"\\[dt]?frac(?:\{([\d.]+)\}|(\d))(?:\{([\d.]+)\}|(\d))", text)
  if frac:
    text = f"{frac.group(1) or frac.group(2)}/{frac.group(3) or frac.group(4)}"
  parts = text.split("/")
  if len(parts) > 2 or not all(re.fullmatch(r"\d+(?:\.\d+)?|\.\d+", p) for p in parts):
    return None
  values = [fractions.Fraction(p) for p in parts]
  if len(values) == 2 and values[1] == 0:
    return None
  return values[0] if len(values) == 1 else values[0] / values[1]


def _any_equivalent(pairs) -> bool:
  """Whether math-verify finds any (span, gold) pair equal, in the verifier pool's worker
  processes under the verifiers' hard time limit (a worker's first LaTeX parse alone can
  take seconds); an undecided comparison counts as equal."""
  if not pairs:
    return False
  from amrsd import rewards  # the pool's module; imported here to keep leaks() light
  verdicts = rewards.verify_batch(
      "math", [f"\\boxed{{{span}}}" for span, _ in pairs],
      [{"answer": gold} for _, gold in pairs], timeout=rewards.DEFAULT_TIMEOUT_S)
  return any(v.reward >= 1.0 or v.feedback in UNDECIDED for v in verdicts)


# -- multiple choice -----------------------------------------------------------------

def _states_choice(hint: str, answers) -> bool:
  for answer in answers:
    answer = str(answer).strip()
    letter = re.fullmatch(r"\(?([A-Za-z])\)?", answer)
    if letter:
      if _states_letter(hint, letter.group(1).upper()):
        return True
    elif answer and (contains_phrase(hint, answer.strip(".,;:!?\"' ")) or
                     _states_number(hint, answer)):
      return True
  return False


def _states_number(hint: str, answer: str) -> bool:
  """Whether a numeric answer ("-0.01", "3") is among the hint's plain numeric spans."""
  value = _rational(_unsigned(answer.strip()))
  return value is not None and value in {_rational(s) for s, _ in answer_spans(hint)}


def _states_letter(hint: str, letter: str) -> bool:
  """The gold letter in a position where it is an answer: "(B)", "B)", "option B", "answer
  is B", "<answer>B</answer>", "\\boxed{B}", or B standing alone as a capital; never inside
  a word, and "A"/"I" not where they are the article or the pronoun."""
  any_case = f"[{letter}{letter.lower()}]"
  # The lower-case "a" and "i" are words; other letters are answers in either case.
  spoken = letter if letter in "AI" else any_case
  marked = (rf"[(\[{{]\s*{any_case}\s*[)\]}}]", rf"<answer>\s*{any_case}\s*</answer>",
            rf"\\(?:boxed|text|textbf|mathrm)\s*\{{\s*{any_case}\s*\}}",
            rf"\b(?i:options?|choices?|answers?|letter)\s*(?i:is|:|=|would be|should be|must "
            rf"be)?\s*\(?{spoken}(?![\w'’-])")
  if any(re.search(p, hint) for p in marked):
    return True
  # By position: "the second option", "option 2".
  position = str(ord(letter) - ord("A") + 1)
  ordinals = alpha2digit(hint, "en", threshold=0) if re.search(r"[A-Za-z]{4}", hint) else hint
  if re.search(rf"\b{position}(?:st|nd|rd|th)\s+(?:options?|choices?|alternatives?)\b",
               ordinals, re.IGNORECASE) or re.search(
                   rf"\b(?:options?|choices?|alternatives?)\s*#?\s*{position}(?![\d.])",
                   hint, re.IGNORECASE):
    return True
  for match in re.finditer(rf"(?<![\w'’-]){letter}(?![\w'’-])", hint):
    following = hint[match.end():]
    if (letter == "A" and re.search(r"(?:^|[.!?:]\s+|\n\s*|[\"“‘(*]\s*)$", hint[:match.start()])
        and re.match(r"\s+[a-z]", following)
        and not re.match(rf"\s+(?:{_LETTER_FOLLOWERS})\b", following)):
      continue  # the article, which starts a sentence: "A careful look"
    if letter == "I" and re.match(r"\s+[a-z’']", following):
      continue  # the pronoun: "I would check"
    return True
  return False


# -- tool calls ----------------------------------------------------------------------

def _states_tool_call(hint: str, answers) -> bool:
  names, values = set(), []
  for answer in answers:
    _collect_calls(answer, names, values)
  if any(states_tool_name(hint, name) for name in names):
    return True
  for value in values:
    number = _rational(_unsigned(str(value)))
    if number is not None:
      if number >= MIN_TOOL_NUMBER and _states_number(hint, str(value)):
        return True
    # A value without a letter or digit ("..", "--") is punctuation to a hint ("Hmm...").
    elif (len(text := str(value).strip()) >= MIN_TOOL_STRING and re.search(r"[^\W_]", text)
          and contains_phrase(hint, text, case_sensitive=len(text) <= 3)):
      return True
  return False


# Where a one-word tool name ("find", "sort") stands as code rather than as a word.
_CALL_VERB = (r"(?:call(?:s|ed|ing)?|use[sd]?|runs?|ran|invok(?:e[sd]?|ing)|"
              r"execut(?:e[sd]?|ing)|tr(?:y|ies|ied))")
_TOOL_NOUN = r"(?:command|tool|function|method|api|utility|endpoint)s?(?![\w'’-])"
_SHELL_ARGUMENT = r"[ \t]+(?:--?[A-Za-z]|\.\.?(?=[/\s,;:?!)]|$)|~?/\w)"
_QUOTES = ("''", '""', "‘’", "“”")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_PLAIN_WORD = re.compile(r"[A-Za-z][a-z]*")


def states_tool_name(hint: str, name: str) -> bool:
  """Whether a hint names a tool (the rule in the module docstring): a name of several
  words anywhere, in any spelling ("getAxolotlFacts" in "call get_axolotl_facts",
  "math.factorial" in "use math_factorial"); a one-word name only as code."""
  parts = [p for p in name.strip().split(".") if p.strip()]
  if not parts:
    return False
  if len(parts) == 1 and _PLAIN_WORD.fullmatch(word := parts[0].strip()):
    # Without a vowel ("cd", "ls", "mv", "wc") it is no English word: anywhere, in lower case.
    return _states_word_as_code(hint, word) or (
        not re.search(r"[aeiouy]", word, re.IGNORECASE) and
        re.search(rf"(?<![\w.-]){re.escape(word.lower())}(?![\w-])", hint) is not None)
  words = [re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+|[^\sA-Za-z\d_-]", p) for p in parts]
  if not all(words):
    return False
  pattern = r"(?:[ \t]*[._][ \t]*)?".join(r"[\s_\-]*".join(map(re.escape, w)) for w in words)
  if re.search(rf"(?<![A-Za-z0-9]){pattern}(?![A-Za-z0-9])", hint, re.IGNORECASE):
    return True
  return len(parts) > 1 and states_tool_name(hint, parts[-1])


def _states_word_as_code(hint: str, word: str) -> bool:
  name = rf"(?<![\w.]){re.escape(word)}(?![\w'’-])"
  if re.search(rf"{name}\s*\(|\b{_CALL_VERB}\s+{name}|{name}\s+{_TOOL_NOUN}|"
               rf"{name}{_SHELL_ARGUMENT}|"
               + "|".join(rf"{re.escape(a)}{re.escape(word)}{re.escape(b)}" for a, b in _QUOTES),
               hint, re.IGNORECASE):
    return True
  return any(re.search(rf"(?<![\w.-]){re.escape(word)}(?![\w-])", span.group(2), re.IGNORECASE)
             for span in _CODE_SPAN.finditer(hint))


def _collect_calls(answer, names: set, values: list):
  """Tool names and argument values (numbers and strings; booleans and null dropped) of a
  gold: a JSON list or object of {"Action", "Action_Input"} (or {"name", "arguments"}),
  or a plain string, taken as one value."""
  if isinstance(answer, str):
    try:
      answer = json.loads(answer)
    except ValueError:
      if answer.strip():
        values.append(answer)
      return
  if isinstance(answer, list):
    for item in answer:
      _collect_calls(item, names, values)
  elif isinstance(answer, dict):
    name = answer.get("Action", answer.get("name"))
    if isinstance(name, str) and name.strip():
      names.add(name.strip())
      arguments = answer.get("Action_Input", answer.get("arguments", {}))
      if isinstance(arguments, str):
        try:
          arguments = json.loads(arguments)
        except ValueError:
          pass
      _collect_values(arguments, values)
    else:
      _collect_values(answer, values)
  elif answer is not None and not isinstance(answer, bool):
    values.append(answer if isinstance(answer, (int, float)) else str(answer))


def _collect_values(value, values: list):
  if isinstance(value, dict):
    value = list(value.values())
  if isinstance(value, list):
    for item in value:
      _collect_values(item, values)
  elif isinstance(value, (int, float, str)) and not isinstance(value, bool):
    values.append(value)


def contains_phrase(text: str, phrase: str, *, case_sensitive: bool = False) -> bool:
  """Whether text contains phrase as whole words, with any spacing, case, "_" or "-" between
  its words and camelCase parts: "getAxolotlFacts" is in "call get_axolotl_facts"."""
  tokens = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+|[^\sA-Za-z\d]", phrase)
  if not tokens:
    return False
  pattern = (r"(?<![A-Za-z0-9])" + r"[\s_\-]*".join(map(re.escape, tokens)) +
             r"(?![A-Za-z0-9])")
  return re.search(pattern, text, 0 if case_sensitive else re.IGNORECASE) is not None


# The leak rules and the gold forms per verifier name; other names are numeric (math).
def _tool_rule(read_calls):
  """The tool-call rule on golds read by read_calls (one gold -> its calls)."""
  return lambda hint, answers: _states_tool_call(
      hint, [call for answer in answers for call in read_calls(answer)])


_RULES = {"mcq": _states_choice,
          "tooluse": _states_tool_call, "tooluse_merged": _states_tool_call,
          "bfcl": _tool_rule(_bfcl_calls), "bfcl_multi_turn": _tool_rule(_call_strings)}
_GOLD_FORMS = {"mcq": _choice_golds,
               "bfcl": lambda answer, record: _bfcl_calls(answer),
               "bfcl_multi_turn": lambda answer, record: _call_strings(answer)}
