"""The bfcl_multi_turn environment on real BFCL episodes: the contract, scores, feedback."""

import ast
import json
import random

import pytest

from amrsd import envs
from tests.envs.conftest import (CATEGORIES, as_message, ground_truth, ground_truth_messages,
                                 play)

# Episodes of every category, over the APIs: file system + posting, vehicle control,
# trading, travel; long_context_38 has a turn of 34 calls.
EPISODES = ["multi_turn_base_0", "multi_turn_base_50", "multi_turn_miss_func_0",
            "multi_turn_miss_func_100", "multi_turn_miss_param_0", "multi_turn_miss_param_150",
            "multi_turn_long_context_38", "multi_turn_long_context_150"]


def make(record, pool, **options):
  return envs.make("bfcl_multi_turn", record, pool=pool, **options)


def answer_texts(record) -> list[str]:
  """The ground-truth calls and their string arguments (3+ characters): what feedback
  must never contain."""
  texts = []
  for call in (c for turn in ground_truth(record) for c in turn):
    texts.append(call)
    node = ast.parse(call, mode="eval").body
    values = [ast.literal_eval(v) for v in node.args + [k.value for k in node.keywords]]
    texts += [v for v in values if isinstance(v, str) and len(v) >= 3]
  return texts


def assert_reveals_no_answer(feedback, record):
  leaked = [t for t in answer_texts(record) if t.lower() in feedback.lower()]
  assert not leaked, f"feedback {feedback!r} reveals {leaked}"


@pytest.mark.parametrize("row_id", EPISODES)
def test_ground_truth_one_turn_per_message_scores_one(episodes, pool, row_id):
  record = episodes[row_id]
  env = make(record, pool)
  returned = play(env, ground_truth_messages(record))
  assert env.done and returned[-1] == []
  assert env.result() == (1.0, "correct")
  assert env.tool_calls == sum(len(turn) for turn in ground_truth(record))
  assert env.env_errors == 0


def test_the_calls_of_a_turn_may_come_one_per_message(episodes, pool):
  record = episodes["multi_turn_miss_param_0"]  # turns of 3, 2, 1, 0 and 4 calls
  messages = []
  for calls in ground_truth(record):
    messages += [f"[{call}]" for call in calls] + ["All done."]
  env = make(record, pool)
  play(env, messages)
  assert env.assistant_messages == len(messages) and env.result() == (1.0, "correct")


def test_ground_truth_of_a_sample_scores_one_stepped_together(episodes, pool):
  # Every tenth episode of each category (80), stepped in one batch per round, as a
  # rollout steps its live trajectories.
  records = [r for r in episodes.values() if int(r["id"].rsplit("_", 1)[1]) % 10 == 0]
  assert {r["category"] for r in records} == {f"multi_turn_{c}" for c in CATEGORIES}
  batch = [make(r, pool) for r in records]
  plans = [ground_truth_messages(r) for r in records]
  for env in batch:
    env.start()
  while live := [i for i, env in enumerate(batch) if not env.done]:
    envs.step_all([batch[i] for i in live],
                  [plans[i][batch[i].assistant_messages] for i in live])
  verdicts = envs.results_all(batch)
  assert [r["id"] for r, v in zip(records, verdicts) if v != (1.0, "correct")] == []


def test_start_gives_bfcls_system_prompt_and_the_first_request(episodes, pool):
  record = episodes["multi_turn_base_0"]
  system, user = make(record, pool).start()
  assert system["role"] == "system" and user["role"] == "user"
  assert "[func_name1(params_name1=params_value1" in system["content"]
  assert '"name": "mkdir"' in system["content"] and '"name": "post_tweet"' in system["content"]
  assert user["content"].startswith("Move 'final_report.pdf' within document directory")


def test_calls_are_answered_with_one_tool_message_each(episodes, pool):
  env = make(episodes["multi_turn_base_0"], pool)
  env.start()
  messages = env.step("[cd(folder='document'), ls(), cd(folder='nowhere'), cd()]")
  assert [(m["role"], m["name"]) for m in messages] == [
      ("tool", "cd(folder='document')"), ("tool", "ls()"), ("tool", "cd(folder='nowhere')"),
      ("tool", "cd()")]
  assert messages[0]["content"] == '{"current_working_directory": "document"}'
  assert "final_report.pdf" in messages[1]["content"]  # ls ran in the new directory
  assert "error" in messages[2]["content"].lower()  # the API's own answer to a bad folder
  assert messages[3]["content"].startswith("Error during execution:")  # its TypeError
  assert "missing 1 required positional argument" in messages[3]["content"]
  assert not env.done and env.turn == 0 and env.env_errors == 1 and env.tool_calls == 4
  next_turn = env.step("The file is in document.")
  request = json.loads(episodes["multi_turn_base_0"]["question"])[1][0]["content"]
  assert next_turn == [{"role": "user", "content": request}] and env.turn == 1


def test_miss_func_gives_the_held_out_functions_at_their_turn(episodes, pool):
  record = episodes["multi_turn_miss_func_0"]  # sort is held out until turn 4
  env = make(record, pool)
  returned = play(env, ground_truth_messages(record))
  users = [m for messages in returned for m in messages if m["role"] == "user"]
  assert "'name': 'sort'" in users[2]["content"]
  assert users[2]["content"].endswith("I have updated some more functions you can choose "
                                      "from. What about now?")
  assert env.result() == (1.0, "correct")


def test_the_opening_documents_only_the_functions_given_at_the_start(episodes, pool):
  system, _ = make(episodes["multi_turn_miss_func_0"], pool).start()
  assert '"name": "sort"' not in system["content"] and '"name": "mkdir"' in system["content"]


def test_a_skipped_call_scores_zero_and_feedback_names_the_turn(episodes, pool):
  record = episodes["multi_turn_base_0"]
  env = make(record, pool)  # turn 2 asks for cd + grep; the grep is left out
  play(env, ground_truth_messages(record, lambda turn, calls: calls[:1] if turn == 1 else calls))
  reward, feedback = env.result()
  assert reward == 0.0
  assert feedback.startswith("turn 2 of 4:") and "a call is missing" in feedback
  assert_reveals_no_answer(feedback, record)


def test_a_dropped_call_scores_zero_on_a_sample_and_feedback_names_its_turn(episodes, pool):
  # Every 20th episode of each category (40) with one call left out, chosen at random.
  rng = random.Random(0)
  records = [r for r in episodes.values() if int(r["id"].rsplit("_", 1)[1]) % 20 == 0]
  batch, plans, dropped_turns = [], [], []
  for record in records:
    calls = [(t, i) for t, turn in enumerate(ground_truth(record)) for i in range(len(turn))]
    turn, index = rng.choice(calls)
    plans.append(ground_truth_messages(record, lambda t, c: c[:index] + c[index + 1:]
                                       if t == turn else c))
    dropped_turns.append(turn)
    batch.append(make(record, pool))
    batch[-1].start()
  while live := [i for i, env in enumerate(batch) if not env.done]:
    envs.step_all([batch[i] for i in live],
                  [plans[i][batch[i].assistant_messages] for i in live])
  for record, turn, (reward, feedback) in zip(records, dropped_turns, envs.results_all(batch)):
    assert reward == 0.0, record["id"]
    assert feedback.startswith(f"turn {turn + 1} of "), (record["id"], feedback)
    assert_reveals_no_answer(feedback, record)


@pytest.mark.parametrize("row_id, old, new", [
    ("multi_turn_base_50", "mode='on'", "mode='off'"),
    ("multi_turn_miss_param_150", "'economy'", "'business'"),
    ("multi_turn_long_context_100", "amount=2203.4", "amount=2230.4"),
])
def test_a_wrong_argument_scores_zero(episodes, pool, row_id, old, new):
  record = episodes[row_id]
  assert old in record["answer"]
  env = make(record, pool)
  play(env, ground_truth_messages(record, lambda turn, calls: [c.replace(old, new, 1)
                                                               for c in calls]))
  reward, feedback = env.result()
  assert reward == 0.0 and feedback.startswith("turn ")
  assert_reveals_no_answer(feedback, record)


def test_a_wrong_argument_scores_zero_with_the_wrong_state_named(episodes, pool):
  record = episodes["multi_turn_base_0"]
  env = make(record, pool)
  play(env, ground_truth_messages(record, lambda turn, calls: [
      c.replace("dir_name='temp'", "dir_name='archive'") for c in calls]))
  reward, feedback = env.result()
  assert reward == 0.0
  assert feedback.startswith("turn 1 of 4: wrong state of GorillaFileSystem")
  assert_reveals_no_answer(feedback, record)


@pytest.mark.parametrize("row_id, turn", [("multi_turn_base_60", 2),
                                          ("multi_turn_miss_param_100", 1),
                                          ("multi_turn_long_context_150", 1)])
def test_a_turn_without_calls_scores_zero(episodes, pool, row_id, turn):
  record = episodes[row_id]
  assert ground_truth(record)[turn], "the turn must need calls"
  env = make(record, pool)
  play(env, ground_truth_messages(record, lambda t, calls: [] if t == turn else calls))
  reward, feedback = env.result()
  assert reward == 0.0
  assert feedback.startswith(f"turn {turn + 1} of {len(ground_truth(record))}:")
  assert_reveals_no_answer(feedback, record)


def test_max_turns_ends_the_episode_and_a_stopped_episode_scores_zero(episodes, pool):
  record = episodes["multi_turn_base_0"]
  env = make(record, pool, max_turns=3)
  returned = play(env, ground_truth_messages(record))
  assert len(returned) == 3 and returned[-1] == [] and env.done
  assert env.result() == (0.0, "the episode stopped in turn 2 of 4: the limit of 3 assistant "
                               "messages was reached")


def test_max_turns_reached_in_the_last_turn_is_still_checked(episodes, pool):
  record = episodes["multi_turn_base_0"]  # 4 turns: 7 messages bring the last calls
  env = make(record, pool, max_turns=7)
  play(env, ground_truth_messages(record))
  assert env.assistant_messages == 7 and env.result() == (1.0, "correct")


def test_two_episodes_of_one_row_do_not_share_state(episodes):
  # One worker runs both, so bfcl-eval's instances keyed by test id would collide there.
  from amrsd import rewards
  record = episodes["multi_turn_base_0"]
  with rewards.VerifierPool(1) as one_worker:
    first, second = make(record, one_worker), make(record, one_worker)
    first.start(), second.start()
    turn_one = as_message(ground_truth(record)[0])
    # Made twice in one state, mkdir would fail and mv would move into temp/temp.
    assert first.step(turn_one) == second.step(turn_one)
    plans = [ground_truth_messages(record)[1:]] * 2
    for env, plan in zip((first, second), plans):
      for text in plan:
        env.step(text)
    assert envs.results_all([first, second]) == [(1.0, "correct")] * 2


def test_misuse_of_the_episode_fails_clearly(episodes, pool):
  env = make(episodes["multi_turn_base_0"], pool, max_turns=1)
  with pytest.raises(RuntimeError, match="before start"):
    env.step("[ls()]")
  env.start()
  with pytest.raises(RuntimeError, match="already called"):
    env.start()
  with pytest.raises(TypeError, match="must be str"):
    env.step(None)
  env.step("[ls()]")
  with pytest.raises(RuntimeError, match="after the episode is done"):
    env.step("[ls()]")


def test_result_before_the_end_fails_clearly(episodes, pool):
  env = make(episodes["multi_turn_base_0"], pool)
  env.start()
  with pytest.raises(RuntimeError, match=r"result\(\) before the episode is done"):
    env.result()


@pytest.mark.parametrize("change, message", [
    (lambda r: r.pop("initial_config"), r"lacks \['initial_config'\]"),
    (lambda r: r.update(answer="[[]]"), "has 4 turns but ground truth for 1"),
    (lambda r: r.update(question="[[{"), "field 'question' is not JSON"),
    (lambda r: r.update(involved_classes='["Shell"]'), r"involves \['Shell'\], which bfcl-eval"),
])
def test_bad_records_are_rejected_naming_the_field(episodes, change, message):
  record = dict(episodes["multi_turn_base_0"])
  change(record)
  with pytest.raises(ValueError, match=message):
    envs.make("bfcl_multi_turn", record)


def test_a_bfcl_row_with_its_ground_truth_is_a_record(pool):
  from bfcl_eval.utils import load_dataset_entry, load_ground_truth_entry
  row = load_dataset_entry("multi_turn_base", include_prereq=False)[3]
  answer = load_ground_truth_entry("multi_turn_base")[3]["ground_truth"]
  env = make(dict(row, answer=answer), pool)
  play(env, ground_truth_messages({"answer": json.dumps(answer)}))
  assert env.result() == (1.0, "correct")


def test_unknown_environments_are_rejected_with_the_valid_names():
  with pytest.raises(ValueError, match="unknown environment 'bfcl'.*bfcl_multi_turn"):
    envs.make("bfcl", {})


def test_step_all_rejects_mismatched_lengths(episodes, pool):
  with pytest.raises(ValueError, match="2 environments but 1 messages"):
    envs.step_all([make(episodes["multi_turn_base_0"], pool)] * 2, ["[ls()]"])



def test_without_a_pool_the_shared_one_runs_the_calls(episodes):
  from amrsd import rewards
  record = episodes["multi_turn_base_0"]
  env = envs.make("bfcl_multi_turn", record)
  play(env, ground_truth_messages(record))
  assert env.result() == (1.0, "correct") and rewards.shared_pool().size >= 1
