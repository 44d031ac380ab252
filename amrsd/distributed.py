"""Multi-host start-up: one process per host, every host runs the same program.

The launch scripts describe the process group in environment variables; `initialize()`
reads them and calls `jax.distributed.initialize` before anything touches a device:

  AMRSD_COORDINATOR     host:port of process 0's coordinator service (launch/multi_gpu.sh)
  AMRSD_NUM_PROCESSES   number of processes (hosts), >= 1
  AMRSD_PROCESS_ID      this process, 0 .. AMRSD_NUM_PROCESSES - 1
  AMRSD_TPU_POD         "1" on a TPU VM slice (launch/tpu_pod.sh): JAX reads the slice's
                        metadata itself, so the three variables above may be left out
  AMRSD_INIT_TIMEOUT    seconds to wait for every process to join (default 300)

With none of them set, or with one process, nothing happens: the single-host path.
"""

import dataclasses
import os
from collections.abc import Mapping

import jax
import numpy as np

COORDINATOR = "AMRSD_COORDINATOR"
NUM_PROCESSES = "AMRSD_NUM_PROCESSES"
PROCESS_ID = "AMRSD_PROCESS_ID"
TPU_POD = "AMRSD_TPU_POD"
INIT_TIMEOUT = "AMRSD_INIT_TIMEOUT"
DEFAULT_INIT_TIMEOUT_S = 300


@dataclasses.dataclass(frozen=True)
class ProcessGroup:
  """What `jax.distributed.initialize` is called with; None fields are auto-detected by JAX."""
  coordinator: str | None
  num_processes: int | None
  process_id: int | None
  timeout_s: int


def initialize(environ: Mapping[str, str] | None = None) -> ProcessGroup | None:
  """Joins the process group the environment describes; returns it, or None for one process.

  Call it first thing in an entry point: JAX refuses to go multi-process once a device
  has been used. A second call (or a call after someone else initialized JAX's
  distributed runtime) changes nothing and returns the same answer.
  """
  group = process_group_from_env(os.environ if environ is None else environ)
  if group is None or jax.distributed.is_initialized():
    return group
  jax.distributed.initialize(coordinator_address=group.coordinator,
                             num_processes=group.num_processes,
                             process_id=group.process_id,
                             initialization_timeout=group.timeout_s)
  return group


def is_primary() -> bool:
  """True on process 0, the one that writes logs, metrics, plots and prints progress."""
  return jax.process_index() == 0


def gather(value) -> np.ndarray:
  """value (a number or array of the same shape on every process) from every process,
  stacked on a new first axis in process order: [1, ...] in a single-process run.

  A collective: every process must call it, the same number of times.
  """
  value = np.asarray(value)
  if jax.process_count() == 1:
    return value[None]
  from jax.experimental import multihost_utils
  return np.asarray(multihost_utils.process_allgather(value))


def process_group_from_env(environ: Mapping[str, str]) -> ProcessGroup | None:
  """Parses the AMRSD_* variables (see the module docstring); None means a single process.

  Raises ValueError naming the variable when a value is malformed or the set is incomplete.
  """
  tpu_pod = _flag(environ, TPU_POD)
  timeout_s = _int(environ, INIT_TIMEOUT, minimum=1)
  timeout_s = DEFAULT_INIT_TIMEOUT_S if timeout_s is None else timeout_s
  coordinator = environ.get(COORDINATOR, "").strip() or None
  num_processes = _int(environ, NUM_PROCESSES, minimum=1)
  process_id = _int(environ, PROCESS_ID, minimum=0)
  if coordinator is not None:
    _check_address(coordinator)

  given = {COORDINATOR: coordinator, NUM_PROCESSES: num_processes, PROCESS_ID: process_id}
  if num_processes is not None and process_id is not None and process_id >= num_processes:
    raise ValueError(f"{PROCESS_ID}={process_id} must be below {NUM_PROCESSES}={num_processes} "
                     f"(ids run from 0 to {num_processes - 1})")
  if not tpu_pod:
    if all(v is None for v in given.values()):
      return None
    if num_processes == 1:
      return None
    missing = [name for name, value in given.items() if value is None]
    if missing:
      raise ValueError(f"{', '.join(missing)} not set ({_set_names(given)} given): a multi-process "
                       f"run needs all of {COORDINATOR}, {NUM_PROCESSES} and {PROCESS_ID} "
                       "(launch/multi_gpu.sh sets them)")
  return ProcessGroup(coordinator, num_processes, process_id, timeout_s)


def _set_names(given):
  return ", ".join(name for name, value in given.items() if value is not None)


def _flag(environ, name):
  value = environ.get(name, "").strip().lower()
  if value in ("", "0", "false", "no"):
    return False
  if value in ("1", "true", "yes"):
    return True
  raise ValueError(f"{name}={environ[name]!r} is not a flag; use 1 or 0")


def _int(environ, name, *, minimum):
  text = environ.get(name, "").strip()
  if not text:
    return None
  try:
    value = int(text)
  except ValueError:
    raise ValueError(f"{name}={environ[name]!r} is not an integer") from None
  if value < minimum:
    raise ValueError(f"{name}={value} must be at least {minimum}")
  return value


def _check_address(address):
  host, sep, port = address.rpartition(":")
  if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
    raise ValueError(f"{COORDINATOR}={address!r} must be host:port with a port in 1..65535, "
                     "e.g. 10.0.0.2:12355 (process 0's host)")
