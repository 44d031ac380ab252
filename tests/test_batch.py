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


def test_multi_turn_trajectories_train_on_the_policys_tokens_only():
  """Environment tokens are context: in the student rows, out of the loss (docs: a
  multi-turn episode's response region holds turns and observations)."""
  import jax
  import jax.numpy as jnp
  from flax import nnx

  from amrsd import models
  from amrsd.algorithms.config import AlgorithmConfig
  from amrsd.algorithms.step import make_grad_fn
  from amrsd.sampling.session import Trajectories
  from tests.conftest import tiny_config

  rng = np.random.default_rng(0)
  rows, length = 4, 8
  # Per row: 3 policy tokens, 2 observation tokens, 2 policy tokens, 1 padding.
  policy = np.tile(np.array([1, 1, 1, 0, 0, 1, 1, 0], np.int32), (rows, 1))
  mask = np.tile(np.array([1, 1, 1, 1, 1, 1, 1, 0], np.int32), (rows, 1))
  traj = Trajectories(
      prompt_ids=rng.integers(2, 128, (rows, 3)).astype(np.int32),
      prompt_mask=np.ones((rows, 3), np.int32),
      completion_ids=(rng.integers(2, 128, (rows, length)) * mask).astype(np.int32),
      completion_mask=mask, policy_mask=policy,
      completion_logprobs=np.zeros((rows, length), np.float32))
  model = models.Decoder(tiny_config(), rngs=nnx.Rngs(0))
  ids = np.concatenate([traj.prompt_ids, traj.completion_ids], axis=1)
  logits = model(jnp.asarray(ids), jnp.asarray(np.concatenate([traj.prompt_mask, mask], 1)))
  logp = jax.nn.log_softmax(logits[:, 2:-1], axis=-1)
  traj.completion_logprobs = np.where(policy > 0, np.take_along_axis(
      np.asarray(logp), traj.completion_ids[..., None], -1)[..., 0], 0).astype(np.float32)

  rewards = np.array([1.0, 0.0, 0.0, 1.0], np.float32)
  batch = build_batch(traj, rewards, 0)
  np.testing.assert_array_equal(batch["response_mask"], policy)
  np.testing.assert_array_equal(batch["student_mask"][:, 3:], mask)  # observations attended
  graphdef, state = nnx.split(model)
  grad_fn = make_grad_fn(graphdef, AlgorithmConfig(name="grpo", group_size=4))
  grads, metrics = grad_fn(state, batch, 0)
  # On-policy (ratio 1), token-mean: loss = -sum_i A_i n_i / sum_i n_i over policy tokens.
  adv = (rewards - rewards.mean()) / (rewards.std(ddof=0) + 1e-6)
  n = policy.sum(axis=1)
  np.testing.assert_allclose(float(metrics["loss"]), -(adv * n).sum() / n.sum(), atol=1e-5)
  assert float(metrics["response_length_mean"]) == 5.0
  # Whatever old log-probs the observation tokens carry, the update is the same.
  noisy = dict(batch, logp_old=np.where(policy > 0, batch["logp_old"], -9.0).astype(np.float32))
  grads2, metrics2 = grad_fn(state, noisy, 0)
  assert float(metrics2["loss"]) == float(metrics["loss"])
  for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(grads2)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
