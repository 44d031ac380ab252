"""Berkeley Function Calling Leaderboard single-turn categories, from the bfcl-eval package.

  open_dataset("bfcl:simple,multiple", split="train")

Rows and possible answers come from the data files bfcl-eval ships; the prompt is BFCL's
own prompting format (its system prompt with the function documentation, built by its
`system_prompt_pre_processing_chat_model`), so scores compare with the leaderboard's
prompting models. Records carry what the `bfcl` verifier needs.

BFCL has no training split. split="train" keeps the rows whose id hashes outside one
tenth, split="heldout" that tenth (for the trainer's held-out score), split="all" every
row (for evaluating categories never trained on).
"""

import json
import zlib

from amrsd.data.files import DataError

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
SPLITS = ("train", "heldout", "all")
HELDOUT_BUCKETS = 10  # one bucket of this many is held out


class BfclSource:
  """Records of some BFCL categories (grain-compatible: len + getitem).

  Each record: {"problem": the user's request, "system": BFCL's system prompt with the
  function list, "answer": JSON of the possible answers, "functions": JSON of the
  function list, "category": bfcl's category name, "id", "task": "bfcl", "solution": None}.
  """

  def __init__(self, categories, *, split: str = "train"):
    if split not in SPLITS:
      raise ValueError(f"bfcl split {split!r} is not valid; choose one of {', '.join(SPLITS)}")
    categories = list(categories)
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown or not categories:
      raise ValueError(f"unknown BFCL categories {unknown or categories}; valid: "
                       f"{', '.join(CATEGORIES)}")
    self.name = "bfcl:" + ",".join(categories)
    self.records = [record for c in categories for record in _category_records(CATEGORIES[c])
                    if _in_split(record["id"], split)]
    if not self.records:
      raise DataError(f"{self.name}: no rows in split {split!r}")

  def __len__(self) -> int:
    return len(self.records)

  def __getitem__(self, index: int) -> dict:
    return self.records[index]

  def __repr__(self):
    return f"BfclSource({self.name!r}, rows={len(self)})"


def _category_records(category: str) -> list[dict]:
  try:
    from bfcl_eval.model_handler.utils import system_prompt_pre_processing_chat_model
    from bfcl_eval.utils import load_dataset_entry, load_ground_truth_entry
  except ImportError as e:
    raise ImportError(f"BFCL data needs the bfcl-eval package and the parsers it imports "
                      f"({e}); see launch/setup.sh") from e
  entries = load_dataset_entry(category, include_prereq=False)
  answers = {row["id"]: row["ground_truth"] for row in load_ground_truth_entry(category)}
  records = []
  for entry in entries:
    if entry["id"] not in answers:
      raise DataError(f"bfcl {category}: row {entry['id']} has no possible answer")
    turns = entry["question"]
    messages = system_prompt_pre_processing_chat_model(
        [dict(m) for m in turns[0]], entry["function"], entry["id"])
    roles = [m["role"] for m in messages]
    if len(turns) != 1 or roles != ["system", "user"]:
      raise DataError(f"bfcl {category}: row {entry['id']} is not one system + one user "
                      f"message (turns={len(turns)}, roles={roles})")
    records.append({
        "problem": messages[1]["content"], "system": messages[0]["content"],
        "answer": json.dumps(answers[entry["id"]]), "functions": json.dumps(entry["function"]),
        "category": category, "id": entry["id"], "task": "bfcl", "solution": None})
  return records


def _in_split(row_id: str, split: str) -> bool:
  if split == "all":
    return True
  heldout = zlib.crc32(row_id.encode()) % HELDOUT_BUCKETS == 0
  return heldout == (split == "heldout")
