"""Multi-turn rollouts: the policy plays environment episodes on one sampler session.

    out = rollout.play(sampler, episodes, max_tokens_per_turn=128, max_tokens=2048)
    out.trajectories   # amrsd.sampling.session.Trajectories: prompt, then every turn and
                       # observation, with the policy mask and the policy's log-probs
    out.verdicts       # env.result() per episode: reward and feedback
    out.texts          # each episode after its opening as text (what reflection reads)
    out.metrics        # turns_mean, tool_calls_mean, env_errors, policy_token_fraction

Each round samples one assistant message for every live episode in one sampler call,
steps all their environments at once (amrsd.envs.step_all), renders what they answer
with the chat template and appends it to the session: the KV cache continues, nothing is
prefilled twice. An episode ends when its environment says so, or when the session has no
room for another observation and turn (`out_of_tokens`); it is then scored as it stands.
"""

import dataclasses

import numpy as np

from amrsd import buckets, envs as envs_lib
from amrsd.rewards import feedback as fb
from amrsd.sampling.session import Trajectories


@dataclasses.dataclass
class Rollout:
  trajectories: Trajectories
  verdicts: list[fb.Verdict]
  messages: list[list[dict]]  # each episode's chat, the assistant's messages included
  texts: list[str]            # transcript(...) of each episode after its opening messages
  clipped: list[bool]         # the episode was stopped for lack of room (out_of_tokens)
  metrics: dict


def play(sampler, episodes, *, max_tokens_per_turn: int, max_tokens: int,
         temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0, seed=0) -> Rollout:
  """Plays every episode (started environments are not accepted: play starts them).

  max_tokens_per_turn: the most tokens of one assistant message. max_tokens: cache
  slots after the prompt for the whole episode (turns, observations and their padding).
  """
  episodes = list(episodes)
  if not episodes:
    raise ValueError("rollout.play: no episodes")
  tokenizer = sampler.tokenizer
  chats = [env.start() for env in episodes]
  opening = [len(chat) for chat in chats]
  clipped = [False] * len(episodes)
  session = sampler.session(chats, max_tokens=max_tokens, seed=seed)
  while not session.done:
    turn = session.generate(max_new_tokens=max_tokens_per_turn, temperature=temperature,
                            top_p=top_p, top_k=top_k)
    live = [i for i, reason in enumerate(turn.stop_reasons) if reason is not None]
    replies = envs_lib.step_all([episodes[i] for i in live], [turn.texts[i] for i in live])
    chunks = [None] * len(episodes)
    for i, reply in zip(live, replies):
      before = chats[i] + [{"role": "assistant", "content": turn.texts[i]}]
      if not episodes[i].done:
        chunks[i] = observation_ids(tokenizer, before, reply, sampler.eos_ids,
                                    ended=turn.stop_reasons[i] == "eos")
      chats[i] = before + reply
    need = max((len(c) for c in chunks if c is not None), default=0)
    if need and not _fits(session, need, max_tokens_per_turn):
      for i, chunk in enumerate(chunks):
        if chunk is not None:  # no room for another round: scored as it stands
          episodes[i].done, chunks[i], clipped[i] = True, None, True
    session.extend(chunks)
  verdicts = envs_lib.results_all(episodes)
  trajectories = session.trajectories()
  policy = trajectories.policy_mask.sum()
  metrics = {
      "turns_mean": float(np.mean([env.assistant_messages for env in episodes])),
      "tool_calls_mean": float(np.mean([env.tool_calls for env in episodes])),
      "env_errors": float(sum(env.env_errors for env in episodes)),
      "policy_token_fraction": float(policy / max(trajectories.completion_mask.sum(), 1)),
      "out_of_tokens": float(sum(clipped)),
  }
  texts = [transcript(chat[n:]) for chat, n in zip(chats, opening)]
  return Rollout(trajectories, verdicts, chats, texts, clipped, metrics)


def play_records(sampler, records, *, n: int, max_turns: int, **settings) -> Rollout:
  """play() on n episodes of each record's environment (record["env"]), record-major;
  settings: play's keywords (max_tokens_per_turn, max_tokens, temperature, ...)."""
  episodes = [envs_lib.make(records[i // n]["env"], records[i // n], max_turns=max_turns)
              for i in range(len(records) * n)]
  return play(sampler, episodes, **settings)


def transcript(messages) -> str:
  """Chat messages as plain text, one block per message: "assistant: <text>",
  "tool <call as written>: <result>", "user: <text>"."""
  lines = []
  for m in messages:
    name = f" {m['name']}" if m["role"] == "tool" and m.get("name") else ""
    lines.append(f"{m['role']}{name}: {m['content'].strip()}")
  return "\n".join(lines)


def observation_ids(tokenizer, chat, new_messages, eos_ids, *, ended: bool) -> list[int]:
  """The tokens that follow the assistant's sampled ones, up to the next assistant
  message's opening: the rest of the chat template's end of that message (its end-of-turn
  token unless the policy sampled it, then what the template puts after it), the new
  messages, and the generation prompt.

  chat: the conversation, its last message the assistant's. eos_ids: the end-of-turn
  ids; ended: the sampled tokens end with one (it is in the cache already).
  """
  opened = tokenizer.apply_chat_template(chat[:-1], add_generation_prompt=True, tokenize=False)
  closed = tokenizer.apply_chat_template(chat, tokenize=False)
  after = tokenizer.apply_chat_template(chat + new_messages, add_generation_prompt=True,
                                        tokenize=False)
  content = chat[-1]["content"]
  if not (closed.startswith(opened + content) and after.startswith(closed)):
    raise ValueError("rollout: the chat template rewrites earlier messages when one is "
                     "added (e.g. it drops thinking from past turns), so an episode cannot "
                     "continue on its KV cache; use a model whose template only appends")
  tail = closed[len(opened) + len(content):]  # e.g. "<|im_end|>\n"
  ids = tokenizer(tail + after[len(closed):], add_special_tokens=False)["input_ids"]
  return ids[1:] if ended and ids and ids[0] in eos_ids else ids


def _fits(session, chunk_tokens: int, max_tokens_per_turn: int) -> bool:
  """Room for the chunks (plus the last turn's final token, not yet in the cache) and
  a whole next turn."""
  return buckets.fit(chunk_tokens + 1) + max_tokens_per_turn - 1 <= session.room
