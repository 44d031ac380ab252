"""The worker side of bfcl_multi_turn: safe decoding, hostile call text, private state."""

import json
import random
import time
import warnings

import pytest

from amrsd.envs import bfcl_execution as bx
from amrsd.rewards import pool as pool_lib
from tests.envs.conftest import as_message, ground_truth, ground_truth_messages, play

FILE_SYSTEM = bx.api_functions(("GorillaFileSystem",))


def test_calls_are_rebuilt_from_their_literal_arguments():
  parsed = bx.parse_calls("```\n[sort('a.txt'), mv(source = 'a', destination=\"b\"), "
                          "ls(a=True), touch(file_name='x\\ny')]\n```", FILE_SYSTEM)
  assert [run for _, run, _ in parsed["calls"]] == [
      "sort('a.txt')", "mv(source='a', destination='b')", "ls(a=True)",
      "touch(file_name='x\\ny')"]
  assert not parsed["ends_turn"]


def test_a_single_call_without_brackets_counts_as_bfcls_decoder_reads_it():
  assert bx.parse_calls("ls()", FILE_SYSTEM)["calls"] == [("ls()", "ls()", None)]


@pytest.mark.parametrize("text", ["", "Done, the file is moved.", "[]", "```\n[]\n```",
                                  "<think>maybe [ls()]</think>All done.",
                                  "I ran cd (twice) and it worked."])
def test_messages_without_calls_end_the_turn(text):
  assert bx.parse_calls(text, FILE_SYSTEM) == {"ends_turn": True}


@pytest.mark.parametrize("text", ["[cd(folder='x'", "[cd(folder='x'), 42]", "[" * 1000 + "ls()",
                                  "[ls() for _ in range(9)]"])
def test_text_that_opens_a_call_list_but_does_not_parse_is_an_observation(text):
  assert bx.parse_calls(text, FILE_SYSTEM) == {"ends_turn": False,
                                                "calls": [("", None, bx.NOT_CALLS)]}


@pytest.mark.parametrize("text, problem", [
    ("[__import__('os').system('x')]", "is not one of the available functions"),
    ("[open(file='x', mode='w')]", "open is not one of the available functions"),
    ("[os.system('ls')]", "os.system is not one of the available functions"),
    ("[exec('import os')]", "exec is not one of the available functions"),
    ("[cd(folder=__import__('os').getcwd())]", "arguments must be literal values"),
    ("[cd(folder=(lambda: 'x')())]", "arguments must be literal values"),
    ("[mkdir(dir_name='a' * 10**9)]", "arguments must be literal values"),
    ("[cd(folder=open('/etc/passwd').read())]", "arguments must be literal values"),
    ("[cd(**{'folder': 'x'})]", "arguments must be literal values"),
    ("[cd(*['x'])]", "arguments must be literal values"),
    ("[cd(folder=" + "9" * 5000 + ")]", "not a Python list of function calls"),  # int limit
])
def test_hostile_calls_are_rejected_before_anything_runs(text, problem):
  (shown, run, error), = bx.parse_calls(text, FILE_SYSTEM)["calls"]
  assert run is None and problem in error


def test_a_message_of_many_calls_runs_a_bounded_number_of_them():
  parsed = bx.parse_calls("[" + "pwd(), " * 2000 + "]", FILE_SYSTEM)
  assert len(parsed["calls"]) == bx.MAX_CALLS + 1
  assert "at most 128 calls; the other 1872 did not run" in parsed["calls"][-1][2]


def test_text_past_the_length_cap_is_not_read():
  start = time.monotonic()
  parsed = bx.parse_calls("[" + "pwd(), " * 1_000_000 + "]", FILE_SYSTEM)
  assert parsed["calls"] == [("", None, bx.NOT_CALLS)]  # cut inside a call
  assert time.monotonic() - start < 1.0


def test_the_policys_escape_sequences_raise_no_warnings():
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    (_, run, _), = bx.parse_calls(r"[echo(content='a\c')]", FILE_SYSTEM)["calls"]
  assert run == r"echo(content='a\\c')" and not caught


def step_args(record, text="", history=()):
  return {"id": record["id"], "initial_config": json.loads(record["initial_config"]),
          "involved_classes": json.loads(record["involved_classes"]),
          "history": list(history), "text": text}


def test_random_text_never_raises_and_answers_json(episodes):
  pieces = ["[", "]", "(", ")", "cd", "ls", "=", "'", '"', ",", "folder", "1", "**", "*",
            "lambda", ":", ".", "\x00", "\ud800", "{", "}", "<think>", "</think>", " ", "\n",
            "mv", "echo", "content", "-", "1e999", "True", "None", "\\", "```"]
  rng = random.Random(0)
  args = step_args(episodes["multi_turn_base_0"])
  for _ in range(2000):
    text = "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 30)))
    json.dumps(bx.run_step(dict(args, text=text)))


def test_jobs_leave_no_instances_behind_and_repeat_exactly(episodes):
  from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_utils
  record = episodes["multi_turn_base_0"]
  args = step_args(record, as_message(ground_truth(record)[0]))
  before = set(vars(multi_turn_utils))
  first, second = bx.run_step(args), bx.run_step(args)
  assert first == second and "already exists" not in str(first)
  assert set(vars(multi_turn_utils)) == before


@pytest.mark.parametrize("template", [
    "[open(file='{marker}', mode='w')]",
    "[__import__('os').system('touch {marker}')]",
    "[cd(folder=__import__('os').system('touch {marker}'))]",
    # bfcl-eval's own decoder would eval this argument (a BinOp) while decoding.
    "[cd(folder=__import__('os').system('touch {marker}') + 1)]",
    "[mkdir(dir_name=open('{marker}', 'w').name)]",
    "[cd(folder='document')]; __import__('os').system('touch {marker}')",
])
def test_hostile_text_is_harmless_and_the_episode_goes_on(episodes, pool, tmp_path, template):
  from amrsd import envs
  record = episodes["multi_turn_base_0"]
  marker = tmp_path / "created"
  env = envs.make("bfcl_multi_turn", record, pool=pool)
  returned = play(env, [template.format(marker=marker)] + ground_truth_messages(record))
  first = returned[0]
  assert first and all(m["role"] == "tool" and m["content"].startswith("Error") for m in first)
  assert not marker.exists()
  assert env.result() == (1.0, "correct")  # the hostile message changed no state


def test_a_call_that_never_ends_is_stopped_within_the_limit(episodes, pool):
  from amrsd import envs
  record = episodes["multi_turn_base_15"]  # MathAPI: power(base, exponent) is base ** exponent
  assert "MathAPI" in record["involved_classes"]
  env = envs.make("bfcl_multi_turn", record, pool=pool, step_timeout=1.0)
  env.start()
  restarts = pool.restarts
  start = time.monotonic()
  stopped = env.step("[power(base=7, exponent=999999999999)]")
  elapsed = time.monotonic() - start
  print(f"never-ending call stopped after {elapsed:.2f} s (limit 1 s)")
  assert stopped == [{"role": "tool", "name": "", "content": "Error during execution: the calls "
                      "were stopped (timed out); none of them took effect"}]
  assert elapsed < 1.0 + pool_lib.KILL_GRACE_S + 1.0 and pool.restarts == restarts + 1
  assert env.env_errors == 1 and not env.done
  for text in ground_truth_messages(record):
    env.step(text)
  assert env.result() == (1.0, "correct")
