"""Batch layout: teacher and student rows aligned on the response tokens."""

import numpy as np

from amrsd.batch import build_batch, teacher_context_ids
from amrsd.sampling import SampleResult


class WordTokenizer:
  """Chat template and tokenization over whitespace words (enough for batch layout)."""

  def apply_chat_template(self, messages, add_generation_prompt, tokenize):
    return " ".join(m["content"] for m in messages) + " <assistant>"

  def __call__(self, text, add_special_tokens=False):
    return {"input_ids": [10 + len(w) for w in text.split()]}


def _result():
  return SampleResult(
      prompt_ids=np.array([[0, 5, 6], [7, 8, 9]], np.int32),
      prompt_mask=np.array([[0, 1, 1], [1, 1, 1]], np.int32),
      completion_ids=np.array([[11, 12, 99], [13, 14, 15]], np.int32),
      completion_logprobs=np.array([[-0.1, -0.2, -7.0], [-0.3, -0.4, -0.5]], np.float32),
      completion_mask=np.array([[1, 1, 0], [1, 1, 1]], np.int32),
      texts=["a", "b"], stop_reasons=["eos", "length"])


def test_build_batch_aligns_teacher_and_student_responses():
  teacher = [[{"role": "user", "content": "problem with a hint"}], None]
  contexts = teacher_context_ids(_result(), teacher, WordTokenizer())
  batch = build_batch(_result(), [1.0, 0.0], 0, contexts)
  R = 3
  assert batch["student_ids"].shape == (2, 6)
  assert batch["teacher_ids"].shape == (2, 64 + R)    # context padded to CONTEXT_BUCKET
  np.testing.assert_array_equal(batch["teacher_ids"][:, -R:], batch["student_ids"][:, -R:])
  np.testing.assert_array_equal(batch["teacher_mask"][:, -R:], batch["student_mask"][:, -R:])
  # Masked completion tokens become padding and carry no old log-prob.
  assert batch["student_ids"][0, -1] == 0 and batch["logp_old"][0, -1] == 0.0
  np.testing.assert_array_equal(batch["has_hint"], [1.0, 0.0])
  # Row 0's context: the 4 words + "<assistant>", left-padded.
  assert batch["teacher_mask"][0, :64].sum() == 5 and batch["teacher_mask"][0, 64 - 5] == 1
  # A row without a teacher context repeats its student prompt (real tokens only).
  np.testing.assert_array_equal(batch["teacher_ids"][1, 61:64], [7, 8, 9])
  # Another process's longer context widens every process's teacher rows alike.
  wide = build_batch(_result(), [1.0, 0.0], 0, contexts, longest_context=100)
  assert wide["teacher_ids"].shape == (2, 128 + R)
  np.testing.assert_array_equal(wide["teacher_ids"][:, -64 - R:], batch["teacher_ids"])


def test_build_batch_without_teacher_has_only_student_keys():
  batch = build_batch(_result(), [1.0, 0.0], 0)
  assert set(batch) == {"student_ids", "student_mask", "response_mask", "logp_old", "rewards"}
