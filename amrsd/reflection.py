"""Meta-Reflection (AMR-SD) and the teacher contexts of every method. Host code only.

Phase 1 `diagnose`: a diagnostic packet per rollout, from the verdict, the verifier's
feedback, one successful peer of the same group (never itself) or the reference solution.
Phase 2 `reflect`: the policy itself writes Socratic hints from the packets in one batched
sampler call, a leak filter rejects hints that give the answer away (one retry, then none;
SampledRetries draws the retry with the first try).
Phase 3 `teacher_contexts`: the text the teacher is conditioned on, per kind of context
(each method's record in amrsd.algorithms.registry names its kind).
"""

import collections
import dataclasses
import re
from typing import NamedTuple

from amrsd import prompts
from amrsd.hint_filter import gold_answers, leaks

# What a teacher can be conditioned on; each method's record in amrsd.algorithms.registry
# names one. none: no teacher | hint: problem + a hint the policy wrote (phase 2) |
# reference: problem + reference solution (else the answer) | peer: problem + a successful
# peer and/or the verifier's feedback | derive: problem + reference + "derive it yourself".
TEACHER_CONTEXTS = ("none", "hint", "reference", "peer", "derive")

# A closed block; an unclosed one runs to the end (cut off mid-thought); a lone closing
# tag ends thinking that the chat template opened in the prompt.
_THINK = re.compile(r"<think>.*?(?:</think>|$)|^.*?</think>", re.DOTALL)


@dataclasses.dataclass
class Packet:
  """What the reflection of one rollout may use. `empty` packets produce no hint."""
  correct: bool
  feedback: str = ""
  peer: str | None = None        # a successful rollout of the same group, j != i
  reference: str | None = None   # the dataset's reference solution

  @property
  def empty(self) -> bool:
    return not self.correct and not (self.feedback or self.peer or self.reference)


@dataclasses.dataclass
class ReflectionStats:
  """What one reflect call did; all fields are counts, so they add up over processes.

  A request is one prompt sent to the writer (a group hint is one request, not G)."""
  hint_requests: int = 0     # first tries and retries
  hints_rejected: int = 0    # requests whose hint leaked (gold or copy)
  hints_unfinished: int = 0  # requests whose hint hit the token limit or was only thinking
  hints_retried: int = 0     # requests whose first hint was refused and got a second try
  hints_made: int = 0        # rollouts that ended with a hint
  hints_empty: int = 0       # rollouts without a hint (no request, or refused twice)
  hints_skipped: int = 0     # rollouts that needed no hint (zero-variance group, empty packet)
  hint_chars: int = 0        # characters of the hints of all rollouts that have one
  hint_tokens: int = 0       # generated tokens of those hints (0 when the writer gives none)

  @property
  def hint_length_mean(self) -> float:
    return self.hint_chars / self.hints_made if self.hints_made else 0.0

  @property
  def hint_tokens_mean(self) -> float:
    return self.hint_tokens / self.hints_made if self.hints_made else 0.0

  @property
  def leak_rate(self) -> float:
    """Rejected requests / requests (docs/algorithms.md 3.1)."""
    return self.hints_rejected / self.hint_requests if self.hint_requests else 0.0


def strip_thinking(text: str, max_chars: int | None = None) -> str:
  """Removes thinking (<think> blocks, closed or not, and the text before a lone </think>)
  and keeps the last max_chars characters (the answer end; None keeps all)."""
  text = _THINK.sub("", text).strip()
  return text if max_chars is None or len(text) <= max_chars else "..." + text[-max_chars:]


def diagnose(records, completions, rewards, feedbacks, group_size, *, success_threshold=0.5):
  """Phase 1: one Packet per rollout (rollouts ordered group-major). The peer is whole
  (thinking removed): SDPO's teacher reads it so; hint prompts show its end."""
  packets = []
  for i, completion in enumerate(completions):
    group = range(i - i % group_size, i - i % group_size + group_size)
    correct = rewards[i] >= success_threshold
    # The nearest successful peer after i (cyclically) keeps the choice deterministic
    # and spreads demonstrations over a group with several successes.
    peers = [j for j in list(group)[i % group_size + 1:] + list(group)[:i % group_size]
             if rewards[j] >= success_threshold]
    record = records[i // group_size]
    reference = record.get("solution") or None
    packets.append(Packet(
        correct=correct,
        feedback="" if correct else feedbacks[i],
        peer=strip_thinking(completions[peers[0]]) if peers else None,
        reference=reference if not peers else None))
  return packets


def hint_prompt(record, attempt, packet, *, templates=None, tokenizer=None,
                attempt_max_chars=400, peer_max_chars=600):
  """Phase 2 prompt for one packet; None for an empty packet.

  A chat message list, or with `tokenizer` the chat-templated text with thinking switched
  off (`enable_thinking=False`, which Qwen3-style templates read and others ignore): a
  hint is a short answer, and thinking would spend its token budget. The verifier's
  feedback goes with the peer or the reference (docs/algorithms.md 3.1, packet).
  """
  if packet.empty:
    return None
  fields = dict(problem=record["problem"], attempt=strip_thinking(attempt, attempt_max_chars),
                feedback=packet.feedback)
  if packet.correct:
    text = prompts.render("reflect_success", templates, **fields)
  elif packet.peer or packet.reference:
    peer = strip_thinking(packet.peer, peer_max_chars) if packet.peer else packet.reference
    text = prompts.render("reflect_with_peer", templates, peer=peer, **fields)
  else:
    text = prompts.render("reflect_with_feedback", templates, **fields)
  messages = [{"role": "user", "content": text}]
  if tokenizer is None:
    return messages
  return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False,
                                       enable_thinking=False)


def needs_hint(packets, rewards, group_size) -> list[bool]:
  """Per rollout: whether a hint (and so a teacher forward) can change its loss. Not in a
  group whose rewards are all equal (every advantage is 0) nor with an empty packet."""
  rewards = [float(r) for r in rewards]
  if len(rewards) != len(packets) or len(packets) % group_size:
    raise ValueError(f"needs_hint: {len(packets)} packets and {len(rewards)} rewards must be "
                     f"equal in number and a multiple of group_size={group_size}")
  groups = [rewards[start:start + group_size] for start in range(0, len(rewards), group_size)]
  return [max(groups[i // group_size]) > min(groups[i // group_size]) and not packet.empty
          for i, packet in enumerate(packets)]


def reflect(generate, records, completions, packets, group_size, *, rewards,
            granularity="rollout", verifier="math", templates=None, tokenizer=None,
            collective=False, request=None, attempt_max_chars=400, peer_max_chars=600,
            leak_ngram=8, leak_max_copied=0.5):
  """Phase 2: hints (str or None) for every rollout, and ReflectionStats.

  generate(prompts, attempt) writes the hints (the sampler at the reflection temperature,
  a different seed per attempt) and returns a result with `texts` and `stop_reasons`
  ("length" = cut at the token limit) per prompt, and optionally `completion_mask`
  [prompts, T] (hint lengths in tokens). Only rollouts that needs_hint() are asked.
  granularity "group" writes one hint per prompt, from the group's first failed rollout
  (failures carry the most information), else its first, and gives it to all G rollouts.
  A hint that leaks (amrsd.hint_filter.leaks against the record's gold forms for
  `verifier`; copy sources: the peer, the reference and the responses it goes with, a
  copy being leak_max_copied of the hint's distinct leak_ngram-word n-grams in one), is
  cut off, or is only thinking gets one retry, then none. tokenizer: hint prompts are
  templated here with thinking off (see hint_prompt); None sends chat messages.
  collective: call generate for both attempts even with nothing to ask, for multi-process
  runs where generate is a collective that every process enters.
  request(record, completion, packet): what generate is sent per hint; None: hint_prompt's
  prompt for the policy, showing the attempt's last attempt_max_chars characters and the
  peer's last peer_max_chars. The
  oracle writer (amrsd.data.oracle, reflection.hint_source = oracle) is sent the record
  itself; everything after the writer is the same.
  """
  if granularity not in ("rollout", "group"):
    raise ValueError(f"hint_granularity must be 'rollout' or 'group', got {granularity!r}")
  needed = needs_hint(packets, rewards, group_size)
  width = group_size if granularity == "group" else 1
  # The writer of each block of `width` rollouts that share a hint -> those rollouts.
  writers = {}
  for start in range(0, len(completions), width):
    block = [i for i in range(start, start + width) if needed[i]]
    failed = [i for i in block if not packets[i].correct]
    if block:
      writers[(failed or block)[0]] = block

  stats = ReflectionStats(hints_skipped=len(completions) - sum(needed))
  hints, tokens = {}, {}
  if request is None:
    def request(record, completion, packet):
      return hint_prompt(record, completion, packet, templates=templates, tokenizer=tokenizer,
                         attempt_max_chars=attempt_max_chars, peer_max_chars=peer_max_chars)
  pending = [(i, request(records[i // group_size], completions[i], packets[i])) for i in writers]
  for attempt in range(2):
    if not pending and not collective:
      break
    result = generate([request for _, request in pending], attempt)
    if len(result.texts) != len(pending) or len(result.stop_reasons) != len(pending):
      raise ValueError(f"reflect: generate returned {len(result.texts)} hints for "
                       f"{len(pending)} requests (attempt {attempt})")
    mask = getattr(result, "completion_mask", None)
    stats.hint_requests += len(pending)
    retry = []
    for k, ((i, request), text, reason) in enumerate(
        zip(pending, result.texts, result.stop_reasons)):
      text = strip_thinking(text)
      record, packet = records[i // group_size], packets[i]
      sources = [packet.peer, packet.reference] + [completions[j] for j in writers[i]]
      if reason == "length" or not text:
        stats.hints_unfinished += 1
      elif leaks(text, gold_answers(record, verifier), [s for s in sources if s],
                 verifier=verifier, ngram=leak_ngram, max_copied=leak_max_copied):
        stats.hints_rejected += 1
      else:
        hints[i], tokens[i] = text, int(mask[k].sum()) if mask is not None else 0
        continue
      if attempt == 0:
        stats.hints_retried += 1
        retry.append((i, request))
    pending = retry

  out = [None] * len(completions)
  for writer, block in writers.items():
    for i in block:
      out[i] = hints.get(writer)
      if writer in hints:
        stats.hints_made += 1
        stats.hint_chars += len(out[i])
        stats.hint_tokens += tokens[writer]
  stats.hints_empty = len(out) - stats.hints_made
  return out, stats


class Written(NamedTuple):
  """A writer's hints as reflect reads them, one row per request."""
  texts: list
  stop_reasons: list
  completion_mask: object = None  # [requests, T] hint tokens, or None


class SampledRetries:
  """A reflect writer that samples each request's retry together with its first try.

  sample(prompts, n) -> the sampler's result with n completions per prompt (prompt-major).
  Attempt 0 draws two hints per request in one call (one prefill, one decode loop at twice
  the rows); attempt 1 answers from the second hints and samples nothing. A retry is sent
  the same prompt, so the second hint is distributed exactly as a sequential retry's (an
  independent draw at the same temperature); what it costs is the decode rows of second
  hints that go unused when the first passes (reflection.retry = "parallel" in a run).
  """

  def __init__(self, sample):
    self.sample = sample
    self.spare = collections.defaultdict(collections.deque)

  def __call__(self, prompts, attempt):
    if attempt == 0:
      self.spare.clear()
      out = self.sample(prompts, 2)
      mask = getattr(out, "completion_mask", None)
      for k, prompt in enumerate(prompts):
        self.spare[_key(prompt)].append((out.texts[2 * k + 1], out.stop_reasons[2 * k + 1],
                                         None if mask is None else mask[2 * k + 1]))
      return Written(out.texts[::2], out.stop_reasons[::2], None if mask is None else mask[::2])
    # Equal prompts are interchangeable: their spares are draws from one distribution.
    rows = [self.spare[_key(prompt)].popleft() for prompt in prompts]
    masks = [m for _, _, m in rows]
    return Written([t for t, _, _ in rows], [r for _, r, _ in rows],
                   None if not rows or masks[0] is None else masks)


def _key(prompt):
  return prompt if isinstance(prompt, str) else repr(prompt)


def teacher_contexts(kind, records, packets, hints, group_size, *, templates=None):
  """Phase 3: the teacher's user message per rollout (None: no teacher for that row).

  kind: one of TEACHER_CONTEXTS (rows of kind "hint" without a hint get no teacher).
  """
  if kind not in TEACHER_CONTEXTS:
    raise ValueError(f"unknown teacher context {kind!r}; known: {', '.join(TEACHER_CONTEXTS)}")
  out = []
  for i, packet in enumerate(packets):
    record = records[i // group_size]
    problem = prompts.render("task", templates, problem=record["problem"])
    reference = record.get("solution") or record.get("answer")
    text = None
    if kind == "hint" and hints[i] is not None:
      text = prompts.render("teacher_hint", templates, problem=problem, hint=hints[i])
    elif kind == "reference":
      text = prompts.render("teacher_reference", templates, problem=problem, reference=reference)
    elif kind == "derive":
      text = prompts.render("teacher_derive", templates, problem=problem, reference=reference)
    elif kind == "peer" and packet.peer and packet.feedback:
      text = prompts.render("teacher_peer_feedback", templates, problem=problem,
                            peer=packet.peer, feedback=packet.feedback)
    elif kind == "peer" and packet.peer:
      text = prompts.render("teacher_peer", templates, problem=problem, peer=packet.peer)
    elif kind == "peer" and packet.feedback:
      text = prompts.render("teacher_feedback", templates, problem=problem,
                            feedback=packet.feedback)
    out.append(None if text is None else [{"role": "user", "content": text}])
  return out
