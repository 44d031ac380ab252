"""bfcl_multi_turn: one episode of BFCL's multi-turn categories (host side).

The episode is a BFCL row (amrsd.data "bfcl_mt:<category>", or bfcl-eval's own row with
its ground truth under "answer"): user turns, simulated APIs (file system, messaging,
trading, travel, vehicle...) with their initial state, and the ground-truth calls per
turn. Following bfcl-eval's prompting inference:
  - start(): BFCL's system prompt with the function documentation, then turn 1's request;
  - an assistant message with calls, `[func(a=1), other(b='x')]`, runs them (in a pool
    worker, see bfcl_execution) and answers one {"role": "tool", "name": <the call as
    written>, "content": <its result>} message per call; a bad call or an API error is
    such a message ("Error during execution: ..."), never an exception; text that opens
    a call list ("[") but does not parse is one such message with name "" (bfcl would end
    the turn there; the policy learns more from being told);
  - a message without calls ends the user turn; the next turn's {"role": "user"} messages
    come back (miss_func: at the turns where BFCL adds functions, the user message lists
    their documentation, as bfcl-eval words it);
  - the episode is done after the last turn or `max_turns` assistant messages; step
    returns [] exactly then.
result() runs bfcl-eval's multi_turn_checker (state and results compared with the ground
truth's, turn by turn): 1.0 or 0.0, and feedback naming the first wrong turn and what
was wrong, never the ground-truth calls. An episode stopped by max_turns before its last
turn scores 0 (BFCL: "force-terminated").
"""

import json

from amrsd.rewards import feedback as fb

MAX_TURNS = 32  # assistant messages per episode; BFCL's episodes have 1-8 user turns
# Fields of a bfcl multi-turn row the episode reads (JSON text in amrsd's records).
MULTI_TURN_FIELDS = ("question", "function", "missed_function", "initial_config",
                     "involved_classes")
STEP_TIMEOUT_S = 5.0  # one message's calls (with the replay of the earlier ones)
CHECK_TIMEOUT_S = 20.0  # the checker runs the episode's calls and the ground truth's


class BfclMultiTurnEnv:
  """One episode. record: see the module docstring; max_turns: assistant messages at most;
  pool: an amrsd.rewards.VerifierPool (None: the process's shared pool).

  Counters for metrics: `assistant_messages` (so far), `tool_calls` (calls run),
  `env_errors` (observations that are errors: rejected calls, API errors, stopped steps).
  """

  name = "bfcl_multi_turn"

  def __init__(self, record: dict, *, max_turns: int = MAX_TURNS, pool=None,
               step_timeout: float = STEP_TIMEOUT_S, check_timeout: float = CHECK_TIMEOUT_S):
    if max_turns < 1:
      raise ValueError(f"{self.name}: max_turns must be >= 1, got {max_turns}")
    self.row = episode_row(record)
    self.max_turns = max_turns
    self.pool = pool
    self.step_timeout, self.check_timeout = step_timeout, check_timeout
    self.turn = 0  # index of the current user turn
    self.calls: list[list[list[str]]] = [[]]  # per turn reached, per message: calls run
    self.assistant_messages = self.tool_calls = self.env_errors = 0
    self.done = False
    self._started = False
    self._verdict = None

  @property
  def turns(self) -> int:
    return len(self.row["question"])

  def start(self) -> list[dict]:
    """[system (BFCL's prompt and function documentation), user (turn 1)]."""
    if self._started:
      raise RuntimeError(f"{self.name} {self.row['id']}: start() was already called")
    self._started = True
    return opening_messages(self._user_messages(0), self.row["function"], self.row["id"])

  def step(self, text: str) -> list[dict]:
    """Messages to append after the assistant's `text` ([] once the episode is done)."""
    from amrsd import envs
    return envs.step_all([self], [text])[0]

  def result(self) -> fb.Verdict:
    """(reward 1.0 or 0.0, feedback) of the finished episode."""
    from amrsd import envs
    return envs.results_all([self])[0]

  def step_request(self, text: str) -> dict:
    """The pool request that runs the calls in `text` (amrsd.envs.step_all sends it)."""
    if not isinstance(text, str):
      raise TypeError(f"{self.name}: the assistant message must be str, got "
                      f"{type(text).__name__}")
    if not self._started or self.done:
      raise RuntimeError(f"{self.name} {self.row['id']}: step() "
                         f"{'after the episode is done' if self.done else 'before start()'}")
    history = [call for turn in self.calls for message in turn for call in message]
    return self._request("step", history=history, text=text)

  def take_step(self, answer: dict) -> list[dict]:
    """Updates the episode with the pool's answer to step_request; the messages to append."""
    self.assistant_messages += 1
    result = self._result_of(answer)
    if result is None:  # stopped: nothing of it was kept, the replay never sees it
      self.env_errors += 1
      messages = [_tool("", f"Error during execution: the calls were stopped "
                            f"({answer['failure']}); none of them took effect")]
    elif result["ends_turn"]:
      self.turn += 1
      if self.turn == self.turns:
        self.done = True
        return []
      self.calls.append([])
      messages = [dict(m) for m in self._user_messages(self.turn)]
    else:
      run = [c["run"] for c in result["calls"] if c["run"] is not None]
      if run:  # bfcl's evaluation drops messages without calls that decode
        self.calls[-1].append(run)
      self.tool_calls += len(run)
      self.env_errors += sum(c["run"] is None or c["result"].startswith("Error during execution")
                             for c in result["calls"])
      messages = [_tool(c["call"], c["result"]) for c in result["calls"]]
    if self.assistant_messages >= self.max_turns:
      self.done = True
      return []
    return messages

  def check_request(self) -> dict | None:
    """The pool request that checks the finished episode; None when no check is needed."""
    if not self.done:
      raise RuntimeError(f"{self.name} {self.row['id']}: result() before the episode is done "
                         f"(turn {self.turn + 1} of {self.turns}, "
                         f"{self.assistant_messages} assistant messages)")
    if self._verdict is not None or len(self.calls) < self.turns:
      return None
    return self._request("check", calls=self.calls, answer=self.row["answer"])

  def take_check(self, answer: dict | None) -> fb.Verdict:
    if self._verdict is None:
      self._verdict = self._verdict_of(answer)
    return self._verdict

  def _verdict_of(self, answer) -> fb.Verdict:
    if answer is None:
      return fb.verdict_fail(f"the episode stopped in turn {self.turn + 1} of {self.turns}: "
                             f"the limit of {self.max_turns} assistant messages was reached")
    outcome = self._result_of(answer)
    if outcome is None:
      return fb.verdict_fail(f"the episode could not be checked ({answer['failure']})")
    if outcome["valid"]:
      return fb.verdict_correct()
    return fb.verdict_fail(_problem(outcome, self.turns))

  def _request(self, job: str, **args) -> dict:
    row = self.row
    return {"kind": "env", "job": f"{self.name}.{job}",
            "args": {"id": row["id"], "initial_config": row["initial_config"],
                     "involved_classes": row["involved_classes"], **args}}

  def _result_of(self, answer: dict) -> dict | None:
    """The job's result; None when the pool stopped it; a job error is raised."""
    if "error" in answer:
      raise RuntimeError(f"{self.name} {self.row['id']}: the worker failed: {answer['error']}")
    return answer.get("result")

  def _user_messages(self, turn: int) -> list[dict]:
    added = self.row["missed_function"].get(str(turn))
    if added is None:
      return self.row["question"][turn]
    from bfcl_eval.constants.default_prompts import (
        DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_PROMPTING as ADDED_FUNCTIONS)
    return [{"role": "user", "content": ADDED_FUNCTIONS.format(functions=added)}]


def opening_messages(messages, functions, row_id: str) -> list[dict]:
  """BFCL's prompting opening: its system prompt listing `functions` (documentation
  dicts), then `messages` (a turn's chat messages; a system message among them is
  appended to BFCL's). New dicts: the inputs are not changed."""
  try:
    from bfcl_eval.model_handler.utils import system_prompt_pre_processing_chat_model
  except ImportError as e:
    raise ImportError(f"BFCL prompts need the bfcl-eval package and the parsers it "
                      f"imports ({e}); see launch/setup.sh") from e
  return system_prompt_pre_processing_chat_model([dict(m) for m in messages], functions, row_id)


def episode_row(record: dict) -> dict:
  """The fields the episode reads, decoded (records hold them as JSON text), checked."""
  if not isinstance(record, dict):
    raise TypeError(f"bfcl_multi_turn: the record must be a dict, got {type(record).__name__}")
  row_id = record.get("id", "<no id>")
  required = ("id", "answer") + tuple(f for f in MULTI_TURN_FIELDS if f != "missed_function")
  missing = [f for f in required if f not in record]
  if missing:
    raise ValueError(f"bfcl_multi_turn: record {row_id} lacks {missing} (a bfcl_mt:<category> "
                     "record, or a bfcl row with its ground truth under 'answer')")
  row = {"id": record["id"]}
  for field in ("answer",) + MULTI_TURN_FIELDS:
    value = record.get(field, {})
    try:
      row[field] = json.loads(value) if isinstance(value, str) else value
    except ValueError as e:
      raise ValueError(f"bfcl_multi_turn: record {row_id}: field {field!r} is not JSON "
                       f"({e})") from None
  from bfcl_eval.constants.executable_backend_config import CLASS_FILE_PATH_MAPPING
  unknown = [c for c in row["involved_classes"] if c not in CLASS_FILE_PATH_MAPPING]
  if unknown:
    raise ValueError(f"bfcl_multi_turn: record {row_id} involves {unknown}, which bfcl-eval "
                     f"does not have (it has {', '.join(CLASS_FILE_PATH_MAPPING)})")
  if len(row["answer"]) != len(row["question"]):
    raise ValueError(f"bfcl_multi_turn: record {row_id} has {len(row['question'])} turns but "
                     f"ground truth for {len(row['answer'])}")
  return row


def _tool(call: str, content: str) -> dict:
  return {"role": "tool", "name": call, "content": content}


def _problem(outcome: dict, turns: int) -> str:
  """The checker's finding in words: the turn and the kind of error, no ground truth."""
  kind = outcome["error_type"]
  if outcome["turn"] is None:
    return f"the episode could not be checked ({kind})"
  where = f"turn {outcome['turn'] + 1} of {turns}"
  if kind.endswith("empty_turn_model_response"):
    return f"{where}: no function was called, but the request needed calls (a missing call)"
  if kind.endswith("instance_state_mismatch"):
    differ = ", ".join(outcome["attributes"]) or "its state"
    return (f"{where}: wrong state of {outcome['api']} after the turn ({differ} differ): "
            "a call is missing, wrong or extra")
  if kind.endswith("execution_response_mismatch"):
    return (f"{where}: the calls' results lack some the request needed: a call is missing "
            "or has wrong arguments")
  return f"{where}: the calls are wrong ({kind})"
