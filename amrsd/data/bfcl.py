"""Berkeley Function Calling Leaderboard categories, from the bfcl-eval package.

  open_dataset("bfcl:simple,multiple", split="train")      # single-turn rows
  open_dataset("bfcl_mt:base,miss_func", split="train")    # multi-turn episodes

Rows and possible answers come from the data files bfcl-eval ships; the prompt is BFCL's
own prompting format (its system prompt with the function documentation, built by its
`system_prompt_pre_processing_chat_model`), so scores compare with the leaderboard's
prompting models. Records carry what the `bfcl` verifier needs.

BFCL has no training split. split="train" keeps the rows whose id hashes outside one
tenth, split="heldout" that tenth (for the trainer's held-out score), split="all" every
row (for evaluating categories never trained on).

Multi-turn rows are episodes for the `bfcl_multi_turn` environment (amrsd.envs): the
user's turns, the simulated APIs' initial state and the ground-truth calls of each turn.
"""

import json
import zlib

from amrsd.data.files import DataError
from amrsd.envs.bfcl_multi_turn import MULTI_TURN_FIELDS, opening_messages

# amrsd name -> bfcl test category (Python only: the checker's Java/JS paths need more).
CATEGORIES = {
    "simple": "simple_python",
    "multiple": "multiple",
    "parallel": "parallel",
    "parallel_multiple": "parallel_multiple",
    "live_simple": "live_simple",
    "live_multiple": "live_multiple",
    "live_parallel": "live_parallel",
    "live_parallel_multiple": "live_parallel_multiple",
}
# amrsd name -> bfcl multi-turn category (episodes for amrsd.envs' bfcl_multi_turn).
MULTI_TURN_CATEGORIES = {
    "base": "multi_turn_base",
    "miss_func": "multi_turn_miss_func",  # some functions are given only at a later turn
    "miss_param": "multi_turn_miss_param",  # a request lacks a value; a later turn gives it
    "long_context": "multi_turn_long_context",  # the APIs' state holds much more data
}
SPLITS = ("train", "heldout", "all")
HELDOUT_BUCKETS = 10  # one bucket of this many is held out


class BfclSource:
  """Records of some BFCL categories (grain-compatible: len + getitem).

  Single-turn record: {"problem": the user's request, "system": BFCL's system prompt with
  the function list, "answer": JSON of the possible answers, "functions": JSON of the
  function list, "category": bfcl's category name, "id", "task": "bfcl", "solution": None}.

  Multi-turn record (multi_turn=True): bfcl's row with its nested fields as JSON text
  ("question": the user's messages per turn, "function": the documentation given at the
  start, "missed_function": {turn: documentation given at that turn}, "initial_config",
  "involved_classes"), "answer": JSON of the ground-truth calls per turn, "problem" and
  "system": the opening messages (as amrsd.envs shows them), "category", "id",
  "task" and "env": "bfcl_multi_turn", "solution": None.
  """

  def __init__(self, categories, *, split: str = "train", multi_turn: bool = False):
    if split not in SPLITS:
      raise ValueError(f"bfcl split {split!r} is not valid; choose one of {', '.join(SPLITS)}")
    names = MULTI_TURN_CATEGORIES if multi_turn else CATEGORIES
    categories = list(categories)
    unknown = [c for c in categories if c not in names]
    if unknown or not categories:
      raise ValueError(f"unknown BFCL {'multi-turn ' * multi_turn}categories "
                       f"{unknown or categories}; valid: {', '.join(names)}")
    self.name = ("bfcl_mt:" if multi_turn else "bfcl:") + ",".join(categories)
    rows = _multi_turn_records if multi_turn else _category_records
    self.records = [record for c in categories for record in rows(names[c])
                    if _in_split(record["id"], split)]
    if not self.records:
      raise DataError(f"{self.name}: no rows in split {split!r}")

  def __len__(self) -> int:
    return len(self.records)

  def __getitem__(self, index: int) -> dict:
    return self.records[index]

  def __repr__(self):
    return f"BfclSource({self.name!r}, rows={len(self)})"


def _rows_with_answers(category: str):
  """(bfcl row, its ground truth) for every row of a category."""
  try:
    from bfcl_eval.utils import load_dataset_entry, load_ground_truth_entry
  except ImportError as e:
    raise ImportError(f"BFCL data needs the bfcl-eval package and the parsers it imports "
                      f"({e}); see launch/setup.sh") from e
  entries = load_dataset_entry(category, include_prereq=False)
  answers = {row["id"]: row["ground_truth"] for row in load_ground_truth_entry(category)}
  for entry in entries:
    if entry["id"] not in answers:
      raise DataError(f"bfcl {category}: row {entry['id']} has no possible answer")
    yield entry, answers[entry["id"]]


def _category_records(category: str) -> list[dict]:
  records = []
  for entry, answer in _rows_with_answers(category):
    turns = entry["question"]
    messages = opening_messages(turns[0], entry["function"], entry["id"])
    roles = [m["role"] for m in messages]
    if len(turns) != 1 or roles != ["system", "user"]:
      raise DataError(f"bfcl {category}: row {entry['id']} is not one system + one user "
                      f"message (turns={len(turns)}, roles={roles})")
    records.append({
        "problem": messages[1]["content"], "system": messages[0]["content"],
        "answer": json.dumps(answer), "functions": json.dumps(entry["function"]),
        "category": category, "id": entry["id"], "task": "bfcl", "solution": None})
  return records


def _multi_turn_records(category: str) -> list[dict]:
  records = []
  for entry, answer in _rows_with_answers(category):
    turns = entry["question"]
    if not turns or not turns[0] or len(answer) != len(turns):
      raise DataError(f"bfcl {category}: row {entry['id']} has {len(turns)} turns (the first "
                      f"{'empty' if turns and not turns[0] else 'given'}) and ground truth for "
                      f"{len(answer)}")
    opening = opening_messages(turns[0], entry["function"], entry["id"])
    records.append({
        **{field: json.dumps(entry.get(field, {})) for field in MULTI_TURN_FIELDS},
        "problem": "\n\n".join(m["content"] for m in opening[1:]),
        "system": opening[0]["content"], "answer": json.dumps(answer), "category": category,
        "id": entry["id"], "task": "bfcl_multi_turn", "env": "bfcl_multi_turn",
        "solution": None})
  return records


def _in_split(row_id: str, split: str) -> bool:
  if split == "all":
    return True
  heldout = zlib.crc32(row_id.encode()) % HELDOUT_BUCKETS == 0
  return heldout == (split == "heldout")
