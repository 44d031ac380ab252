"""Multi-turn tool environments: the policy calls tools, the environment answers.

  env = envs.make("bfcl_multi_turn", record)   # one episode (record: data "bfcl_mt:base")
  messages = env.start()                       # chat messages up to the first user turn
  while not env.done:
    messages = env.step(assistant_text)        # runs its calls; what to append next
  reward, feedback = env.result()              # 1.0 / 0.0 and words, never the answer

Messages are chat dicts: start() gives [{"role": "system"}, {"role": "user"}]; step gives
one {"role": "tool", "name": <call as written>, "content": <result>} per call in the
message, the next turn's {"role": "user"} messages after a message without calls, and []
exactly when the episode is over (after the last turn, or max_turns assistant messages).
The caller appends {"role": "assistant", "content": assistant_text} itself, before what
step returns.

Calls run in the worker processes of amrsd.rewards.pool (the verifiers' pool: the same
time and memory limits, a stuck worker is killed and replaced); step_all and results_all
send the jobs of many episodes at once, so a rollout steps all live trajectories of a
turn in parallel. Environments: bfcl_multi_turn (amrsd.envs.bfcl_multi_turn).
"""

from amrsd.envs import bfcl_execution, bfcl_multi_turn
from amrsd.rewards import feedback as fb

ENVS = {"bfcl_multi_turn": bfcl_multi_turn.BfclMultiTurnEnv}
# Jobs the pool's workers run for the environments (amrsd.rewards.worker asks here).
_WORKER_JOBS = {
    "bfcl_multi_turn.step": bfcl_execution.run_step,
    "bfcl_multi_turn.check": bfcl_execution.check_episode,
}


def make(name: str, record: dict, **options):
  """One episode of environment `name` on `record`; options go to its constructor
  (bfcl_multi_turn: max_turns, pool, step_timeout, check_timeout)."""
  if name not in ENVS:
    raise ValueError(f"unknown environment {name!r}; valid names: {', '.join(ENVS)}")
  return ENVS[name](record, **options)


def step_all(envs, texts) -> list[list[dict]]:
  """env.step(text) for every pair, the calls of all run in parallel in the pool."""
  envs, texts = list(envs), list(texts)
  if len(envs) != len(texts):
    raise ValueError(f"step_all: {len(envs)} environments but {len(texts)} messages")
  if not envs:
    return []
  requests = [env.step_request(text) for env, text in zip(envs, texts)]
  answers = _pool_of(envs).run(requests, timeout=max(env.step_timeout for env in envs))
  return [env.take_step(answer) for env, answer in zip(envs, answers)]


def results_all(envs) -> list[fb.Verdict]:
  """env.result() for every finished episode, the checks run in parallel in the pool."""
  envs = list(envs)
  requests = [env.check_request() for env in envs]
  asked = [i for i, r in enumerate(requests) if r is not None]
  answers = [None] * len(envs)
  if asked:
    timeout = max(envs[i].check_timeout for i in asked)
    for i, answer in zip(asked, _pool_of(envs).run([requests[i] for i in asked],
                                                   timeout=timeout)):
      answers[i] = answer
  return [env.take_check(answer) for env, answer in zip(envs, answers)]


def worker_job(name: str):
  """The function a pool worker runs for job `name` (args dict -> JSON-able result)."""
  if name not in _WORKER_JOBS:
    raise ValueError(f"unknown environment job {name!r}; valid: {', '.join(_WORKER_JOBS)}")
  return _WORKER_JOBS[name]


def _pool_of(envs):
  from amrsd import rewards
  pools = {id(env.pool): env.pool for env in envs}
  if len(pools) > 1:
    raise ValueError(f"step_all/results_all: the environments use {len(pools)} different "
                     "pools; give them one")
  pool, = pools.values()
  return pool if pool is not None else rewards.shared_pool()
