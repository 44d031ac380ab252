"""The project's own procedural task: integer arithmetic with tunable difficulty.

A level fixes the number of terms, the digits per operand and the operators; records
carry what reflection needs: {"problem", "answer", "solution", "task", "difficulty"}.
Base accuracy of SmolLM2-135M-Instruct, prompt "{problem} Answer with the number only.",
chat template, 12 new tokens, held-out split (2-core CPU, 32 prompts per level; greedy /
temperature 1 with 2 samples each): level 1 0.56 / 0.17, level 2 0.59 / 0.17, level 3
0.03 / 0.02, level 5 0.06 / 0.13. DESIGN.md: one-digit addition 0.75 / 0.16, two-digit
addition (level 4) 0.02 / 0.00. levels=(1, 2) starts in the 10-60 % band at temperature
1; adding level 3 leaves room for the learning curves to differ.
"""

import dataclasses

import numpy as np

TASK = "arithmetic"


@dataclasses.dataclass(frozen=True)
class ArithmeticLevel:
  """terms: (min, max) operands; digits: (min, max) digits per operand; operators: drawn
  uniformly between operands, from "+", "-", "*" (usual precedence)."""
  terms: tuple[int, int] = (2, 2)
  digits: tuple[int, int] = (1, 1)
  operators: str = "+"

  def __post_init__(self):
    if not 2 <= self.terms[0] <= self.terms[1]:
      raise ValueError(f"arithmetic terms must satisfy 2 <= min <= max, got {self.terms}")
    if not 1 <= self.digits[0] <= self.digits[1] <= 9:
      raise ValueError(f"arithmetic digits must satisfy 1 <= min <= max <= 9, got {self.digits}")
    if not self.operators or set(self.operators) - set("+-*"):
      raise ValueError(f"arithmetic operators must be a non-empty string over '+-*', "
                       f"got {self.operators!r}")


LEVELS = {
    1: ArithmeticLevel((2, 2), (1, 1), "+"),
    2: ArithmeticLevel((2, 2), (1, 1), "+-"),
    3: ArithmeticLevel((3, 3), (1, 1), "+-"),
    4: ArithmeticLevel((2, 2), (2, 2), "+"),
    5: ArithmeticLevel((3, 3), (1, 1), "+-*"),
}


def make_problem(rng: np.random.Generator, level: ArithmeticLevel, difficulty) -> dict:
  """One record drawn with rng; `difficulty` is stored as given (the level's name)."""
  count = int(rng.integers(level.terms[0], level.terms[1] + 1))
  operands = []
  for _ in range(count):
    digits = int(rng.integers(level.digits[0], level.digits[1] + 1))
    low = 0 if digits == 1 else 10 ** (digits - 1)
    operands.append(int(rng.integers(low, 10 ** digits)))
  operators = [level.operators[int(rng.integers(len(level.operators)))] for _ in range(count - 1)]
  expression = _join(operands, operators)
  steps = _solve(operands, operators)
  return {
      "problem": f"What is {expression}?",
      "answer": str(steps[-1][0][0]),
      "solution": " = ".join([expression] + [_join(*step) for step in steps[1:]]),
      "task": TASK,
      "difficulty": difficulty,
  }


def _solve(operands, operators):
  """States of the expression, one per rewrite: products first, then left to right."""
  state = (list(operands), list(operators))
  steps = [state]
  while "*" in state[1]:
    at = state[1].index("*")
    values, ops = list(state[0]), list(state[1])
    values[at:at + 2] = [values[at] * values[at + 1]]
    del ops[at]
    state = (values, ops)
    steps.append(state)
  while state[1]:
    values, ops = list(state[0]), list(state[1])
    value = values[0] + values[1] if ops[0] == "+" else values[0] - values[1]
    state = ([value] + values[2:], ops[1:])
    steps.append(state)
  return steps


def _join(operands, operators) -> str:
  parts = [str(operands[0])]
  for op, value in zip(operators, operands[1:]):
    parts += [op, str(value) if value >= 0 else f"({value})"]
  return " ".join(parts)
