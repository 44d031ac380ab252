"""Meta-Reflection (AMR-SD) and the teacher contexts of every method. Host code only.

Phase 1 `diagnose`: a diagnostic packet per rollout, from the verdict, the verifier's
feedback, one successful peer of the same group (never itself) or the reference solution.
Phase 2 `reflect`: the policy itself writes Socratic hints from the packets in one batched
sampler call, a leak filter rejects hints that give the answer away (one retry, then none).
Phase 3 `teacher_contexts`: the text the teacher is conditioned on, per kind of context
(each method's record in amrsd.algorithms.registry names its kind).
"""

import dataclasses
import re

from amrsd import prompts

# What a teacher can be conditioned on; each method's record in amrsd.algorithms.registry
# names one. none: no teacher | hint: problem + a hint the policy wrote (phase 2) |
# reference: problem + reference solution (else the answer) | peer: problem + a successful
# peer and/or the verifier's feedback | derive: problem + reference + "derive it yourself".
TEACHER_CONTEXTS = ("none", "hint", "reference", "peer", "derive")

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


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
  """What one reflect call did; all fields are counts, so they add up over processes."""
  hints_made: int = 0       # rollouts that ended with a hint
  hints_rejected: int = 0   # hints the leak filter rejected (first tries and retries)
  hints_retried: int = 0    # rollouts whose first hint was rejected and got a second try
  hints_empty: int = 0      # rollouts without a hint (empty packet or rejected twice)
  hint_chars: int = 0       # characters of all hints made

  @property
  def hint_length_mean(self) -> float:
    return self.hint_chars / self.hints_made if self.hints_made else 0.0

  @property
  def leak_rate(self) -> float:
    tries = self.hints_made + self.hints_rejected
    return self.hints_rejected / tries if tries else 0.0


def strip_thinking(text: str, max_chars: int) -> str:
  """Removes <think> blocks and keeps the last max_chars characters (the answer end)."""
  text = _THINK.sub("", text).strip()
  return text if len(text) <= max_chars else "..." + text[-max_chars:]


def diagnose(records, completions, rewards, feedbacks, group_size, *,
             success_threshold=0.5, peer_max_chars=600):
  """Phase 1: one Packet per rollout (rollouts ordered group-major)."""
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
        peer=strip_thinking(completions[peers[0]], peer_max_chars) if peers else None,
        reference=reference if not peers else None))
  return packets


def hint_prompt(record, attempt, packet, *, templates=None, attempt_max_chars=400):
  """Phase 2 prompt (a chat message list) for one packet; None for an empty packet."""
  if packet.empty:
    return None
  fields = dict(problem=record["problem"], attempt=strip_thinking(attempt, attempt_max_chars))
  if packet.correct:
    text = prompts.render("reflect_success", templates, **fields)
  elif packet.peer or packet.reference:
    text = prompts.render("reflect_with_peer", templates, peer=packet.peer or packet.reference,
                          **fields)
  else:
    text = prompts.render("reflect_with_feedback", templates, feedback=packet.feedback, **fields)
  return [{"role": "user", "content": text}]


def normalize_answer(text: str) -> str:
  """Canonical form of a final answer for leak matching: '1,000.0' -> '1000'."""
  text = str(text).strip().strip("$").replace(",", "").replace(" ", "")
  boxed = re.search(r"\\boxed\{(.*)\}", text)
  if boxed:
    text = boxed.group(1)
  if re.fullmatch(r"-?\d+\.0*", text):
    text = text.split(".")[0]
  return text


def leaks(hint: str, answers, sources, *, ngram=8, max_copied=0.5) -> bool:
  """True when the hint contains a normalized answer or copies long n-grams of a source.

  Numbers are compared as numbers (42 matches '42.0' and '\\boxed{42}'); spelled-out
  numbers ("forty-two") are not detected.
  """
  hint_numbers = {normalize_answer(n) for n in _NUMBER.findall(hint)}
  hint_flat = normalize_answer(hint)
  for answer in answers:
    norm = normalize_answer(answer)
    if not norm:
      continue
    if re.fullmatch(r"-?\d+(\.\d+)?", norm):
      if norm in hint_numbers:
        return True
    elif norm in hint_flat:
      return True
  words = hint.split()
  grams = {tuple(words[k:k + ngram]) for k in range(len(words) - ngram + 1)}
  if grams:
    for source in sources:
      source_words = source.split()
      source_grams = {tuple(source_words[k:k + ngram])
                      for k in range(len(source_words) - ngram + 1)}
      if len(grams & source_grams) / len(grams) >= max_copied:
        return True
  return False


def reflect(generate, records, completions, packets, group_size, *, granularity="rollout",
            templates=None, answer_of=None, collective=False):
  """Phase 2: hints (str or None) for every rollout, and ReflectionStats.

  generate(prompts: list[messages], attempt: int) -> list[str] writes the hints (the
  sampler at the reflection temperature, a different seed per attempt). granularity
  "group" writes one hint per prompt, from the group's first failed rollout (failures
  carry the most information), else its first rollout, and gives it to all G rollouts.
  answer_of(text) -> str extracts a final answer from a peer rollout (for leak checks).
  collective: call generate for both attempts even with nothing to ask, for multi-process
  runs where generate is a collective that every process enters.
  """
  if granularity not in ("rollout", "group"):
    raise ValueError(f"hint_granularity must be 'rollout' or 'group', got {granularity!r}")
  if granularity == "group":
    writers = []
    for start in range(0, len(completions), group_size):
      group = range(start, start + group_size)
      failed = [i for i in group if not packets[i].correct and not packets[i].empty]
      writers.append(failed[0] if failed else start)
  else:
    writers = list(range(len(completions)))

  stats = ReflectionStats()
  hints = {}
  pending = []
  for i in writers:
    request = hint_prompt(records[i // group_size], completions[i], packets[i],
                          templates=templates)
    if request is not None:
      pending.append((i, request))
  for attempt in range(2):
    if not pending and not collective:
      break
    texts = generate([request for _, request in pending], attempt)
    retry = []
    for (i, request), text in zip(pending, texts):
      record, packet = records[i // group_size], packets[i]
      answers = [record.get("answer", "")]
      sources = [s for s in (packet.peer, packet.reference) if s]
      if packet.peer and answer_of is not None and answer_of(packet.peer):
        answers.append(answer_of(packet.peer))
      text = text.strip()
      if not text:
        continue
      if leaks(text, answers, sources):
        stats.hints_rejected += 1
        if attempt == 0:
          stats.hints_retried += 1
          retry.append((i, request))
        continue
      hints[i] = text
    pending = retry

  out = []
  for i in range(len(completions)):
    writer = writers[i // group_size] if granularity == "group" else i
    out.append(hints.get(writer))
  stats.hints_made = sum(h is not None for h in out)
  stats.hints_empty = len(out) - stats.hints_made
  stats.hint_chars = sum(len(h) for h in out if h is not None)
  return out, stats


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
