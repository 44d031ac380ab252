"""Real BFCL multi-turn episodes (bfcl-eval's data) and one worker pool for the tests."""

import json

import pytest

from amrsd import data, rewards

CATEGORIES = ("base", "miss_func", "miss_param", "long_context")


@pytest.fixture(scope="session")
def episodes():
  """{bfcl row id: amrsd record} for every episode of the four categories."""
  source = data.open_dataset("bfcl_mt:" + ",".join(CATEGORIES), split="all")
  return {record["id"]: record for record in source.records}


@pytest.fixture(scope="session")
def pool():
  with rewards.VerifierPool(2) as p:
    p.wait_ready()
    yield p


def ground_truth(record) -> list[list[str]]:
  return json.loads(record["answer"])


def as_message(calls: list[str]) -> str:
  """Calls as the assistant writes them in BFCL's prompting format."""
  return "[" + ", ".join(calls) + "]"


def ground_truth_messages(record, edit=None) -> list[str]:
  """One message of calls per turn (none for a turn without calls), each followed by a
  message without calls; edit(turn index, calls) -> calls changes a turn."""
  messages = []
  for turn, calls in enumerate(ground_truth(record)):
    calls = edit(turn, list(calls)) if edit else calls
    if calls:
      messages.append(as_message(calls))
    messages.append("I have done what you asked.")
  return messages


def play(env, messages) -> list[list[dict]]:
  """Starts env and sends messages until it is done; what each step returned."""
  env.start()
  returned = []
  for text in messages:
    if env.done:
      break
    returned.append(env.step(text))
  return returned
