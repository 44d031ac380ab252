"""The train step's batch: student and teacher rows built from one step's rollouts. Host code.

The batch is a dict of arrays; N = B*G rows ordered group-major (all G rollouts of
prompt 0 first), T = P + R student columns, T' = P' + R teacher columns:

  student_ids      [N, T]  int32  left-padded prompt (P columns) + response (R columns)
  student_mask     [N, T]  int32  1 real token, 0 padding (prompt padding and response
                                  padding after EOS)
  response_mask    [N, R]  float32  1 on response tokens that count (up to and including
                                  EOS; in a multi-turn episode the policy's tokens only,
                                  the environment's are context with student_mask 1);
                                  R = response_mask.shape[1], so the response
                                  starts at column T - R (no separate "start" key)
  logp_old         [N, R]  float32  sampler's log-probs of the response tokens (nats)
  rewards          [N]     float32  verifier rewards
  has_hint         [N]     float32  1 where the row has a teacher context (hint,
                                  reference, demonstration); required with a teacher
  teacher_ids      [N, T'] int32  teacher context (P' columns) + the same R response
                                  tokens; required for rlsd, amrsd, sdpo, opsd
  teacher_mask     [N, T'] int32  as student_mask
  logp_ref         [N, R]  float32  reference-policy log-probs; required when kl_coef > 0

Response token t sits at the same offset from the end of the row in the student and the
teacher row, so one slice [-R:] reads both. amrsd.algorithms.step.check_batch checks
this layout inside the jitted step.
"""

import numpy as np

from amrsd import buckets

# Teacher contexts are padded to a ladder size (amrsd.buckets), at least this, so their
# width takes few values and the train step compiles a bounded number of times.
CONTEXT_BUCKET = 64


def teacher_context_ids(result, teacher_messages, tokenizer):
  """(token ids of each row's teacher context, has_hint per row). A row without a teacher
  context (None) repeats its student prompt, real tokens only."""
  contexts, has_hint = [], []
  for row, messages in enumerate(teacher_messages):
    if messages is None:
      ids = result.prompt_ids[row][result.prompt_mask[row] > 0].tolist()
    else:
      text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
      ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    contexts.append(ids)
    has_hint.append(messages is not None)
  return contexts, has_hint


def build_batch(result, reward, pad_id, teacher=None, longest_context=None) -> dict:
  """Arrays for the train step (layout in the module docstring).

  result: the sampler's SampleResult of N rows, or multi-turn Trajectories
  (amrsd.sampling.session: its policy_mask is the response_mask). reward: [N] floats.
  Student rows: the sampler's left-padded prompt + the completion. teacher: None, or (contexts, has_hint)
  from teacher_context_ids. Teacher rows: the context, left-padded to a ladder size
  (amrsd.buckets) >= CONTEXT_BUCKET and >= longest_context (default: the longest of these
  rows; processes pass the longest of all), + the same completion tokens.
  """
  mask = result.completion_mask.astype(np.int32)
  loss_mask = np.asarray(getattr(result, "policy_mask", mask)) * mask
  completion = np.where(mask > 0, result.completion_ids, pad_id).astype(np.int32)
  batch = {
      "student_ids": np.concatenate([result.prompt_ids, completion], axis=1).astype(np.int32),
      "student_mask": np.concatenate([result.prompt_mask, mask], axis=1).astype(np.int32),
      "response_mask": loss_mask.astype(np.float32),
      "logp_old": np.where(loss_mask > 0, result.completion_logprobs, 0.0).astype(np.float32),
      "rewards": np.asarray(reward, np.float32),
  }
  if teacher is None:
    return batch
  contexts, has_hint = teacher
  if longest_context is None:
    longest_context = max(map(len, contexts))
  width = buckets.fit(longest_context, CONTEXT_BUCKET)
  ctx_ids = np.full((len(contexts), width), pad_id, np.int32)
  ctx_mask = np.zeros((len(contexts), width), np.int32)
  for row, ids in enumerate(contexts):
    ctx_ids[row, width - len(ids):] = ids
    ctx_mask[row, width - len(ids):] = 1
  batch["teacher_ids"] = np.concatenate([ctx_ids, completion], axis=1)
  batch["teacher_mask"] = np.concatenate([ctx_mask, mask], axis=1)
  batch["has_hint"] = np.asarray(has_hint, np.float32)
  return batch
