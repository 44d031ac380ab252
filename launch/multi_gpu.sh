#!/usr/bin/env bash
# Starts this host's process of a multi-host JAX run: run it once on every host, with the
# same flags and a different --process-id (or under srun, which supplies them).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: launch/multi_gpu.sh [options] [--config.FIELD=VALUE ...] [-- COMMAND ...]

Runs `python -m amrsd.train` as process I of N, one process per host, each seeing all of
its local GPUs. Process 0's host runs the coordinator at --coordinator.

Options:
  --coordinator HOST:PORT  address of process 0's host (default under Slurm: the first
                           host of SLURM_JOB_NODELIST, port --port)
  --port PORT              coordinator port when the host comes from Slurm (default 12355)
  --num-processes N        number of hosts (default under Slurm: SLURM_NTASKS)
  --process-id I           this host, 0 .. N-1 (default under Slurm: SLURM_PROCID)
  --config FILE            recipe, e.g. configs/paper.py:amrsd (default: the built-in default)
  --config.FIELD=VALUE     config override, passed through unchanged (repeatable)
  --init-timeout SECONDS   how long to wait for every host to join (default 300)
  --python PATH            interpreter (default .venv/bin/python, made by launch/setup.sh)
  --dry-run                print the command instead of running it
  -h, --help               this text
  -- COMMAND ...           run COMMAND instead of amrsd.train, e.g. -- python -m amrsd.evaluate ...

The GPU build of JAX is not in requirements.txt: on each host, after `bash launch/setup.sh`,
install it with `.venv/bin/python -m pip install "jax[cuda12]==<jax version in requirements.txt>"`.

Examples:
  # two hosts, by hand
  host-a$ launch/multi_gpu.sh --coordinator host-a:12355 --num-processes 2 --process-id 0 --config configs/paper.py:amrsd
  host-b$ launch/multi_gpu.sh --coordinator host-a:12355 --num-processes 2 --process-id 1 --config configs/paper.py:amrsd
  # Slurm, one task per node
  srun --nodes=2 --ntasks-per-node=1 launch/multi_gpu.sh --config configs/paper.py:amrsd
EOF
}

SCRIPT_NAME=multi_gpu.sh
# shellcheck source=launch/shell_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/shell_lib.sh"

is_uint() {
  [[ $1 =~ ^[0-9]+$ ]]
}

# First host of a Slurm node list such as "gpu[03-06,09],cpu1" -> gpu03.
first_slurm_host() {
  local list=$1
  if command -v scontrol >/dev/null 2>&1; then
    scontrol show hostnames "$list" | head -n 1
  elif [[ $list =~ ^([^,\[]+)\[([^]]+)\] ]]; then
    local range=${BASH_REMATCH[2]}
    echo "${BASH_REMATCH[1]}${range%%[,-]*}"
  else
    echo "${list%%,*}"
  fi
}

cd "$(dirname "$0")/.."

coordinator="" port=12355 num_processes="" process_id="" config="" init_timeout=""
python=.venv/bin/python dry_run=0
overrides=() command=()
while [ $# -gt 0 ]; do
  case $1 in
    --coordinator) need_value "$1" $# "${2:-}"; coordinator=$2; shift 2 ;;
    --coordinator=*) coordinator=${1#*=}; shift ;;
    --port) need_value "$1" $# "${2:-}"; port=$2; shift 2 ;;
    --port=*) port=${1#*=}; shift ;;
    --num-processes) need_value "$1" $# "${2:-}"; num_processes=$2; shift 2 ;;
    --num-processes=*) num_processes=${1#*=}; shift ;;
    --process-id) need_value "$1" $# "${2:-}"; process_id=$2; shift 2 ;;
    --process-id=*) process_id=${1#*=}; shift ;;
    --config) need_value "$1" $# "${2:-}"; config=$2; shift 2 ;;
    --config=*) config=${1#*=}; shift ;;
    --config.*) overrides+=("$1"); shift ;;
    --init-timeout) need_value "$1" $# "${2:-}"; init_timeout=$2; shift 2 ;;
    --init-timeout=*) init_timeout=${1#*=}; shift ;;
    --python) need_value "$1" $# "${2:-}"; python=$2; shift 2 ;;
    --python=*) python=${1#*=}; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; command=("$@"); [ ${#command[@]} -gt 0 ] || die "nothing after --"; break ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

# Under Slurm every task gets its rank from the environment; flags still win.
if [ -n "${SLURM_NTASKS:-}" ]; then
  num_processes=${num_processes:-$SLURM_NTASKS}
  process_id=${process_id:-${SLURM_PROCID:-}}
  nodelist=${SLURM_JOB_NODELIST:-${SLURM_NODELIST:-}}
  if [ -z "$coordinator" ] && [ -n "$nodelist" ]; then
    coordinator="$(first_slurm_host "$nodelist"):$port"
  fi
fi

[ -n "$num_processes" ] || die "--num-processes is required (or run under srun, which sets SLURM_NTASKS)"
is_uint "$num_processes" && [ "$num_processes" -ge 1 ] \
  || die "--num-processes '$num_processes' must be a positive integer"
if [ -z "$process_id" ]; then
  [ "$num_processes" = 1 ] || die "--process-id is required with $num_processes processes (or run under srun)"
  process_id=0
fi
is_uint "$process_id" || die "--process-id '$process_id' must be an integer in 0..$((num_processes - 1))"
[ "$process_id" -lt "$num_processes" ] \
  || die "--process-id $process_id must be below --num-processes $num_processes"
is_uint "$port" || die "--port '$port' must be an integer"
if [ "$num_processes" -gt 1 ]; then
  [ -n "$coordinator" ] || die "--coordinator HOST:PORT is required with $num_processes processes"
  [[ $coordinator =~ ^.+:[0-9]+$ ]] || die "--coordinator '$coordinator' must be HOST:PORT, e.g. host-a:12355"
fi
[ -z "$init_timeout" ] || { is_uint "$init_timeout" && [ "$init_timeout" -ge 1 ]; } \
  || die "--init-timeout '$init_timeout' must be a positive number of seconds"

env_vars=("AMRSD_NUM_PROCESSES=$num_processes" "AMRSD_PROCESS_ID=$process_id")
[ -z "$coordinator" ] || env_vars=("AMRSD_COORDINATOR=$coordinator" "${env_vars[@]}")
[ -z "$init_timeout" ] || env_vars+=("AMRSD_INIT_TIMEOUT=$init_timeout")

if [ ${#command[@]} -eq 0 ]; then
  [ "$dry_run" = 1 ] || [ -x "$python" ] \
    || die "$python not found; run 'bash launch/setup.sh' on this host first (or pass --python)"
  command=("$python" -m amrsd.train)
  [ -z "$config" ] || command+=("--config=$config")
  command+=("${overrides[@]}")
elif [ -n "$config" ] || [ ${#overrides[@]} -gt 0 ]; then
  die "--config and --config.* go to amrsd.train; with '-- COMMAND' put them in COMMAND"
fi

if [ "$dry_run" = 1 ]; then
  quote_words env "${env_vars[@]}" "${command[@]}"
  exit 0
fi
exec env "${env_vars[@]}" "${command[@]}"
