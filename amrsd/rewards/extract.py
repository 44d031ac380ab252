"""Final-answer extraction from free-form completions (plain Python, host side).

Every function returns the answer as a string, or None when the completion holds no
answer of that kind. Nothing here evaluates the answer, so hostile text is cheap.
"""

import re

# A number as models write it: optional sign and dollar, thousands separators, decimals.
_NUMBER = re.compile(r"-?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\$?\s?\.\d+")
_HASH_ANSWER = re.compile(r"####\s*([^\n]*)")
_STATED_ANSWER = re.compile(r"answer\s+is\s*[:=]?\s*([^\n]*)", re.IGNORECASE)
_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)\s*")
# Multiple choice: explicit statements first, then a parenthesised letter.
_CHOICE_STATED = re.compile(
    r"(?:answer\s*(?:is|:)\s*:?|option|choice)\s*\(?\s*([A-Ea-e])\b\s*\)?",
    re.IGNORECASE)
_CHOICE_PAREN = re.compile(r"\(([A-E])\)")
_CHOICE_ALONE = re.compile(r"(?:^|\n)\s*\(?([A-E])[).:]?\s*$")
# A letter opening an <answer> tag's content: "B", "(b)", "B. text", "B: text".
_CHOICE_LEADING = re.compile(r"\(?\s*([A-Ea-e])\s*\)?(?![A-Za-z0-9])")


def boxed_answer(text: str) -> str | None:
  """Content of the last \\boxed{...} (or \\fbox{...}), braces nested to any depth.

  `\\boxed 5` (no braces) gives "5". An unclosed brace gives None.
  """
  last = None
  for match in _BOX_COMMAND.finditer(text):
    start = match.end()
    if start < len(text) and text[start] == "{":
      content = _balanced(text, start)
      if content is not None:
        last = content
    else:
      token = re.match(r"[^\s$]+", text[start:])
      if token:
        last = token.group(0)
  return None if last is None else last.strip()


def _balanced(text: str, open_at: int) -> str | None:
  depth = 0
  for i in range(open_at, len(text)):
    if text[i] == "{":
      depth += 1
    elif text[i] == "}":
      depth -= 1
      if depth == 0:
        return text[open_at + 1:i]
  return None


def last_number(text: str) -> str | None:
  """The last number in text, normalised: "$1,000.50" -> "1000.50"; None if there is none."""
  numbers = _NUMBER.findall(text)
  return normalize_number(numbers[-1]) if numbers else None


def normalize_number(token: str) -> str:
  """Drops dollar signs, spaces and thousands separators: "-$1,000" -> "-1000"."""
  return token.replace("$", "").replace(",", "").replace(" ", "")


def hash_answer(text: str) -> str | None:
  """Text after the last "#### " (the GSM8K convention), stripped; None if absent."""
  found = _HASH_ANSWER.findall(text)
  return found[-1].strip() if found else None


def stated_answer(text: str) -> str | None:
  """Text after the last "the answer is", stripped of a trailing period; None if absent."""
  found = _STATED_ANSWER.findall(text)
  return found[-1].strip().rstrip(".").strip() if found else None


def numeric_answer(text: str) -> str | None:
  """The model's final number: the first number of the last box, else of the text after
  "#### ", else after "the answer is", else the last number anywhere. Normalised or None."""
  for candidate in (boxed_answer(text), hash_answer(text), stated_answer(text)):
    number = _NUMBER.search(candidate or "")
    if number:
      return normalize_number(number.group(0))
  return last_number(text)


def answer_tag(text: str) -> str | None:
  """Content of the last <answer>...</answer> (case free, spaces stripped); an unclosed
  last tag (a cut-off completion) gives the rest of the text. None without a tag."""
  start = text.lower().rfind("<answer>")
  if start < 0:
    return None
  content = text[start + len("<answer>"):]
  end = content.lower().find("</answer>")
  return (content if end < 0 else content[:end]).strip()


def choice_letter(text: str) -> str | None:
  """Multiple-choice letter A-E: "<answer>B</answer>" (SciKnowEval's format, read first),
  "\\boxed{B}", "Answer: B", "the answer is b", "(B)", or a line holding only the letter;
  the last such statement wins. Upper case, or None."""
  tagged = answer_tag(text)
  if tagged:
    leading = _CHOICE_LEADING.match(tagged)
    letter = leading.group(1) if leading else _stated_choice(tagged)
    if letter:
      return letter.upper()
  return _stated_choice(text)


def _stated_choice(text: str) -> str | None:
  boxed = boxed_answer(text)
  if boxed:
    letter = re.fullmatch(r"\(?\s*([A-Ea-e])\s*\)?(?:\s*[).:].*)?", boxed, re.DOTALL)
    if letter:
      return letter.group(1).upper()
  for pattern in (_CHOICE_STATED, _CHOICE_PAREN, _CHOICE_ALONE):
    found = pattern.findall(text)
    if found:
      return found[-1].upper()
  return None
