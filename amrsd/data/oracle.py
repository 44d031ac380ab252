"""Oracle hints for the procedural tasks: written by the task's generator, not the policy.

The mechanism check of AMR-SD (`reflection.hint_source = oracle`) gives the teacher hints
that carry information, so the CIG gate can be measured apart from the hint writer. Every
procedural task is an integer expression (amrsd.data.arithmetic's levels, reasoning-gym's
chain_sum and basic_arithmetic), so one oracle serves them all: it evaluates the
expression one operation at a time (exactly, in fractions), reads the response's final
number and the equations it wrote, and names the first thing that went wrong as a
Socratic pointer (which written step, which operation, which digit), never the value.
For a correct response it names what made it work (docs/algorithms.md 3.1).

The oracle replaces only the writer: amrsd.reflection.reflect sends it the requests and
puts its hints through the same leak filter and retry as the policy's. The first try may
quote numbers of the problem and of the response; the retry (after a refusal) says the
same thing without any number.
"""

import ast
import fractions
import re
from typing import NamedTuple

from amrsd.data import arithmetic
from amrsd.data.procedural import REASONING_GYM_TASKS
from amrsd.reflection import Written
from amrsd.rewards import extract

TASKS = (arithmetic.TASK,) + REASONING_GYM_TASKS  # every task whose records are expressions

_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_VERB = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}
_NAME = {"+": "addition", "-": "subtraction", "*": "multiplication", "/": "division"}
# The operation a response most likely did instead of the problem's.
_CONFUSED = {"+": "-", "-": "+", "*": "+", "/": "*"}
# "a op b = c" as a response writes it (x and the times sign for *), standing alone: not
# the end of a longer chain ("3 + 4 - 2 = 5" is no claim that 4 - 2 = 5). At most 18
# digits per number keeps int() far from Python's digit limit on hostile text.
_EQUATION = re.compile(r"(?<![\d.])(?<![-+*/x×÷(]\s)(?<![-+*/x×÷(])"
                       r"(-?\d{1,18})\s*([-+*/x×÷])\s*(-?\d{1,18})\s*=\s*(-?\d{1,18})(?![\d.])")
_WRITTEN_OPS = {"x": "*", "×": "*", "÷": "/"}


class HintRequest(NamedTuple):
  """What the oracle reads for one hint: the task record, the response, its verdict."""
  record: dict
  response: str
  correct: bool


class Step(NamedTuple):
  """One operation of the expression, in evaluation order. text: its source span; tail:
  the operator and its right operand ("- 2"); rank: the operator's place, 1 = leftmost."""
  left: fractions.Fraction
  op: str
  right: fractions.Fraction
  value: fractions.Fraction
  text: str
  tail: str
  rank: int


def hint_request(record, response, packet) -> HintRequest:
  """reflect's `request` for the oracle (packet: amrsd.reflection.Packet)."""
  return HintRequest(record, response, packet.correct)


def write_hints(requests, retry) -> Written:
  """reflect's `generate` for the oracle: one hint per request; retry 1 is number-free."""
  texts = [oracle_hint(r.record, r.response, r.correct, numbers=retry == 0) for r in requests]
  return Written(texts, ["stop"] * len(texts))


def oracle_hint(record: dict, response: str, correct: bool, *, numbers: bool = True) -> str:
  """A Socratic hint on `response` to the record's expression (at most three sentences).

  numbers: the hint may quote numbers of the problem and the response; False says the
  same with words only (ordinals), for the retry after the leak filter refused one.
  """
  expr = expression(record)
  steps = evaluate(expr)
  if correct:
    return _praise(expr, steps, numbers)
  value = _number(extract.numeric_answer(response))
  if value is None:
    return ("Your reply ends without a number the checker can read. What single number does "
            "the expression come to? End with that number alone.")
  if value == steps[-1].value:
    return ("Your reply was not accepted as it is written. Is the last thing you wrote the "
            "result itself, with nothing after it?")
  for diagnose in (_wrong_equation, _wrong_operation, _wrong_order, _stopped_early, _wrong_sign,
                   _wrong_digit):
    hint = diagnose(expr, steps, value, response, numbers)
    if hint:
      return hint
  first = f", starting with {steps[0].text}" if numbers else ""
  return (f"Go through the expression one operation at a time{first}, and write each result "
          "down. At which operation does your working differ from that?")


def expression(record: dict) -> str:
  """The record's expression: reasoning-gym's metadata, else the first part of the
  solution the arithmetic generator writes ("3 + 4 - 2 = 7 - 2 = 5")."""
  if record.get("task") not in TASKS:
    raise ValueError(f"oracle hints: task {record.get('task')!r} has no oracle; tasks with "
                     f"one: {', '.join(TASKS)}")
  expr = (record.get("metadata") or {}).get("expression") or (record.get("solution") or "")
  expr = expr.split(" = ")[0].strip()
  if not expr:
    raise ValueError(f"oracle hints: {record.get('task')} record {record.get('problem')!r} "
                     "carries no expression (metadata.expression or solution)")
  return expr


def evaluate(expr: str, swap=None) -> list[Step]:
  """The operations of an integer expression (+ - * /, unary signs, parentheses) in
  evaluation order; the last one's value is the result. swap=(rank, op): evaluate with
  that operator changed (what a response that confused it computed). Raises ValueError
  for anything else (names the expression)."""
  try:
    tree = ast.parse(expr, mode="eval").body
  except SyntaxError as e:
    raise ValueError(f"oracle hints: cannot parse expression {expr!r}") from e
  ranks = sorted((node.right.col_offset, id(node)) for node in ast.walk(tree)
                 if isinstance(node, ast.BinOp))
  rank = {key: i + 1 for i, (_, key) in enumerate(ranks)}
  steps = []

  def value(node):
    if isinstance(node, ast.Constant) and type(node.value) is int:
      return fractions.Fraction(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
      inner = value(node.operand)
      return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
      left, right = value(node.left), value(node.right)
      op = _OPS[type(node.op)]
      if swap is not None and swap[0] == rank[id(node)]:
        op = swap[1]
      tail = f"{_OPS[type(node.op)]} {ast.get_source_segment(expr, node.right)}"
      steps.append(Step(left, op, right, _apply(left, op, right),
                        ast.get_source_segment(expr, node), tail, rank[id(node)]))
      return steps[-1].value
    raise ValueError(f"oracle hints: expression {expr!r} holds {ast.dump(node)[:40]}, not "
                     "an integer, + - * / or parentheses")

  result = value(tree)
  return steps or [Step(result, "+", fractions.Fraction(0), result, expr, "", 0)]


def _apply(left, op, right):
  """left op right; a division by 0 (only from a swapped operator) gives 0."""
  return {"+": left + right, "-": left - right, "*": left * right,
          "/": left / right if right else fractions.Fraction(0)}[op]


def _praise(expr, steps, numbers) -> str:
  ops = {s.op for s in steps}
  if "(" in expr:
    what = "you worked out the bracket before the operations around it"
  elif "*" in ops and ops & {"+", "-"}:
    what = "you did the multiplication before the addition and subtraction"
  elif len(steps) > 1:
    what = "you took every term in order, each with its own sign"
  elif steps[0].op in "+-" and _carries(steps[0]):
    what = f"you {'carried' if steps[0].op == '+' else 'borrowed'} between the columns correctly"
  else:
    what = f"you did the {_NAME[steps[0].op]} the problem asks for"
  where = f"in {expr}, " if numbers else ""
  return f"Your answer is right: {where}{what}. Keep working it the same way."


def _carries(step) -> bool:
  """Whether a column of an addition carries (subtraction: borrows)."""
  a, b = abs(int(step.left)), abs(int(step.right))
  while a or b:
    if (step.op == "+" and a % 10 + b % 10 >= 10) or (step.op == "-" and a % 10 < b % 10):
      return True
    a, b = a // 10, b // 10
  return False


def _wrong_equation(expr, steps, value, response, numbers):
  """The first equation of the response that is false."""
  for a, op, b, c in _EQUATION.findall(response):
    op = _WRITTEN_OPS.get(op, op)
    left, right = fractions.Fraction(int(a)), fractions.Fraction(int(b))
    if op == "/" and right == 0:
      continue
    if _apply(left, op, right) != int(c):
      if numbers:
        return (f"You wrote {a} {op} {b} = {c}. Is that {_NAME[op]} right? Work it out "
                "again, column by column, and carry the new value forward.")
      return (f"One {_NAME[op]} you wrote down is not right. Which line of your working is it? "
              "Redo that line column by column and carry the new value forward.")
  return None


def _wrong_operation(expr, steps, value, response, numbers):
  """The response matches the expression with one operator changed."""
  for i, step in enumerate(steps):
    changed = _CONFUSED[step.op]
    if evaluate(expr, swap=(step.rank, changed))[-1].value == value:
      where = f", the '{step.tail}'" if numbers else ""
      return (f"Look at the {_ordinal(step.rank)} operation{where}: does the problem "
              f"{_VERB[step.op]} there, or {_VERB[changed]}? Redo it with the sign it shows.")
  return None


def _wrong_order(expr, steps, value, response, numbers):
  """The response applied the operators strictly left to right, ignoring precedence."""
  tokens = re.findall(r"\d+|[-+*/]", expr)
  if "(" in expr or not {"*", "/"} & set(tokens) or not {"+", "-"} & set(tokens):
    return None
  total = fractions.Fraction(int(tokens[0]))
  for op, number in zip(tokens[1::2], tokens[2::2]):
    total = _apply(total, op, fractions.Fraction(int(number)))
  if total != value:
    return None
  where = f" in {expr}" if numbers else ""
  return (f"Which comes first{where}: the multiplication or the addition and subtraction? "
          "Redo it in that order.")


def _stopped_early(expr, steps, value, response, numbers):
  """The response equals an intermediate result: it left out the rest."""
  for step in steps[:-1]:
    if step.value == value:
      where = f" after {step.text}" if numbers else " partway"
      return (f"Your answer looks like the expression stopped{where}. Did you use every term? "
              "What does the rest of the expression do to that value?")
  return None


def _wrong_sign(expr, steps, value, response, numbers):
  if value == -steps[-1].value:
    return ("The size of your answer looks right, but check its sign: is the total of what "
            "is subtracted larger than the total of what is added?")
  return None


def _wrong_digit(expr, steps, value, response, numbers):
  """Same number of digits as the result: name the leftmost digit that differs."""
  gold = steps[-1].value
  if value.denominator != 1 or gold.denominator != 1 or (value < 0) != (gold < 0):
    return None
  mine, theirs = str(abs(value.numerator)), str(abs(gold.numerator))
  if len(mine) != len(theirs):
    return None
  wrong = [len(mine) - 1 - i for i, (a, b) in enumerate(zip(mine, theirs)) if a != b]
  place = "last digit" if wrong[0] == 0 else f"{_ordinal(wrong[0] + 1)} digit from the right"
  also = ", and so are digits to its right" if len(wrong) > 1 else ""
  column = ("Did a carry or a borrow come into that column from the one to its right?"
            if wrong[0] > 0 else "Redo the last digits of the numbers, column by column.")
  return f"Your {place} is off{also}. {column}"


def _ordinal(n: int) -> str:
  """A word, so that no ordinal reads as a value to the leak filter."""
  words = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth")
  if 1 <= n <= len(words):
    return words[n - 1]
  return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _number(text):
  """An exact number from extract's normalised text; None for none."""
  try:
    return fractions.Fraction(text) if text is not None else None
  except (ValueError, ZeroDivisionError):
    return None
