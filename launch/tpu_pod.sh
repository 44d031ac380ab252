#!/usr/bin/env bash
# Runs amrsd on a Cloud TPU VM slice: one process per worker VM, all started together
# with `--worker=all`, each joining the others through amrsd.distributed (AMRSD_TPU_POD=1).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: launch/tpu_pod.sh SUBCOMMAND --name NAME [options] [--config.FIELD=VALUE ...] [-- COMMAND ...]

Subcommands:
  create   create the TPU VM slice, or reuse it when NAME already exists
  setup    copy the code to every worker and build .venv there (launch/setup.sh plus
           jax[tpu] at the jax version pinned in requirements.txt); run again after edits
  run      start the training command on every worker in the background (nohup); each
           worker logs to REMOTE_DIR/logs/train-<hostname>.log on its own disk
  logs     follow the log of --worker (default 0, the process that prints progress)
  stop     stop the job on every worker (SIGTERM to its process group, SIGKILL after 30 s)
  delete   delete the slice

Options:
  --name NAME            TPU VM name (default: $TPU_NAME)
  --zone ZONE            e.g. us-east5-a (default: gcloud's compute/zone property)
  --project PROJECT      (default: gcloud's core/project property)
  --accelerator TYPE     accelerator type for create (default v5p-64)
  --version RUNTIME      TPU software version for create (default by type: v5p
                         v2-alpha-tpuv5, v5litepod v2-alpha-tpuv5-lite, v6e v2-alpha-tpuv6e,
                         v4 tpu-ubuntu2204-base)
  --spot                 create a Spot slice (cheaper, may be preempted)
  --repo URL             setup: git clone URL on every worker instead of copying this checkout
  --ref REF              with --repo: branch, tag or commit to check out (default: the remote's default)
  --remote-dir DIR       code folder on the workers, relative to the home folder (default amrsd)
  --config FILE          run: recipe, e.g. configs/paper.py:amrsd (default: the built-in default)
  --config.FIELD=VALUE   run: config override, passed through unchanged (repeatable)
  --worker W             logs: worker number or 'all' (default 0)
  --yes                  delete without asking
  --dry-run              print every command instead of running it (gcloud not needed)
  -h, --help             this text
  -- COMMAND ...         run: start COMMAND instead of amrsd.train (from REMOTE_DIR, e.g.
                         -- .venv/bin/python -m amrsd.evaluate --config=... --checkpoint=...)

Set --config.workdir to a gs:// bucket (or a path every worker can write) so checkpoints
survive the slice. Example:
  launch/tpu_pod.sh create --name rl-pod --zone us-east5-a --accelerator v5p-64
  launch/tpu_pod.sh setup  --name rl-pod --zone us-east5-a
  launch/tpu_pod.sh run    --name rl-pod --zone us-east5-a --config configs/paper.py:amrsd \
      --config.workdir=gs://my-bucket/runs/amrsd-1
  launch/tpu_pod.sh logs   --name rl-pod --zone us-east5-a
EOF
}

SCRIPT_NAME=tpu_pod.sh
# shellcheck source=launch/shell_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/shell_lib.sh"

# Runs a command given as words, or prints it one line, shell-quoted, with --dry-run.
execute() {
  if [ "$dry_run" = 1 ]; then
    quote_words "$@"
  else
    "$@"
  fi
}

# The TPU software version Cloud TPU recommends for JAX on each generation.
default_version() {
  case $accelerator in
    v5p-*) version=v2-alpha-tpuv5 ;;
    v5litepod-*) version=v2-alpha-tpuv5-lite ;;
    v6e-*) version=v2-alpha-tpuv6e ;;
    v2-*|v3-*|v4-*) version=tpu-ubuntu2204-base ;;
    *) die "no default --version for accelerator '$accelerator'; pass --version (see https://cloud.google.com/tpu/docs/runtimes)" ;;
  esac
}

gcloud_tpu() {
  local verb=$1
  shift
  execute gcloud compute tpus tpu-vm "$verb" "$name" "${location[@]}" "$@"
}

ssh_workers() {
  gcloud_tpu ssh "--worker=$1" --command "$2"
}

cmd_create() {
  [ -n "$version" ] || default_version
  local create=(create --accelerator-type "$accelerator" --version "$version")
  [ "$spot" = 0 ] || create+=(--spot)
  if [ "$dry_run" = 0 ] && gcloud compute tpus tpu-vm describe "$name" "${location[@]}" \
      --format='value(state)' >/dev/null 2>&1; then
    echo "tpu_pod.sh: $name exists; reusing it" >&2
    return
  fi
  [ "$dry_run" = 0 ] || echo "# unless '$name' exists already:"
  gcloud_tpu "${create[@]}"
}

cmd_setup() {
  local dir jax_version
  dir=$(shell_quote "$remote_dir")
  jax_version=$(sed -n 's/^jax==\([^ ;#]*\).*/\1/p' requirements.txt)
  [ -n "$jax_version" ] || die "requirements.txt has no 'jax==VERSION' line"
  if [ -n "$repo" ]; then
    local checkout=""
    [ -z "$ref" ] || checkout=" && git -C $dir fetch --quiet origin $(shell_quote "$ref") && git -C $dir checkout --quiet FETCH_HEAD"
    ssh_workers all "set -e; if [ -d $dir/.git ]; then git -C $dir fetch --quiet origin && git -C $dir reset --quiet --hard origin/HEAD; else git clone --quiet $(shell_quote "$repo") $dir; fi$checkout"
  else
    copy_checkout "$dir"
  fi
  # TPU VM images ship an older Python; uv provides 3.12 where it is missing, so that
  # launch/setup.sh finds python3.12 on PATH.
  ssh_workers all "set -euo pipefail; cd $dir
if ! command -v python3.12 >/dev/null 2>&1; then
  export PATH=\"\$HOME/.local/bin:\$PATH\"
  command -v uv >/dev/null 2>&1 || python3 -m pip install --user --quiet uv
  uv python install 3.12
  export PATH=\"\$(dirname \"\$(uv python find 3.12)\"):\$PATH\"
fi
bash launch/setup.sh
.venv/bin/python -m pip install --quiet \"jax[tpu]==$jax_version\""
  # Every worker joins the slice's process group, as a training run will.
  ssh_workers all "cd $dir && AMRSD_TPU_POD=1 .venv/bin/python -c 'from amrsd import distributed; distributed.initialize(); import jax; print(\"worker\", jax.process_index(), \"of\", jax.process_count(), \":\", jax.local_device_count(), \"of\", jax.device_count(), jax.devices()[0].device_kind)'"
}

# Ships the tracked and untracked-but-not-ignored files of this checkout (no .venv, no data).
copy_checkout() {
  local dir=$1 tarball="${TMPDIR:-/tmp}/amrsd-code-$$.tar.gz"
  if [ "$dry_run" = 0 ]; then
    trap "rm -f $(shell_quote "$tarball")" EXIT
  fi
  local pack="git ls-files -z --cached --others --exclude-standard | tar -czf $(shell_quote "$tarball") --null --ignore-failed-read -T -"
  if [ "$dry_run" = 1 ]; then
    echo "$pack"
  else
    git rev-parse --is-inside-work-tree >/dev/null 2>&1 || die "setup copies a git checkout; run it from one, or pass --repo URL"
    bash -c "set -o pipefail; $pack"
  fi
  execute gcloud compute tpus tpu-vm scp "$tarball" "$name:amrsd-code.tar.gz" --worker=all "${location[@]}"
  ssh_workers all "set -e; mkdir -p $dir && tar -xzf amrsd-code.tar.gz -C $dir && rm amrsd-code.tar.gz"
}

cmd_run() {
  local dir command_line
  dir=$(shell_quote "$remote_dir")
  if [ ${#command[@]} -eq 0 ]; then
    command=(.venv/bin/python -m amrsd.train)
    [ -z "$config" ] || command+=("--config=$config")
    command+=("${overrides[@]}")
  fi
  command_line=$(quote_words "${command[@]}")
  # setsid gives the job its own process group, which `stop` signals as a whole; nohup and
  # the redirections let it outlive the ssh session.
  ssh_workers all "set -e; cd $dir; mkdir -p logs
if [ -f logs/train.pid ] && kill -0 -- \"-\$(cat logs/train.pid)\" 2>/dev/null; then
  echo \"\$(hostname): job \$(cat logs/train.pid) still running; stop it first (launch/tpu_pod.sh stop)\" >&2; exit 1
fi
log=logs/train-\$(hostname).log
AMRSD_TPU_POD=1 setsid nohup $command_line > \"\$log\" 2>&1 < /dev/null &
echo \$! > logs/train.pid
echo \"\$(hostname): started \$!, log $dir/\$log\""
}

cmd_logs() {
  local dir
  dir=$(shell_quote "$remote_dir")
  ssh_workers "$worker" "tail -v -n 200 -F $dir/logs/train-\$(hostname).log"
}

cmd_stop() {
  local dir
  dir=$(shell_quote "$remote_dir")
  ssh_workers all "cd $dir 2>/dev/null && [ -f logs/train.pid ] || { echo \"\$(hostname): no job\"; exit 0; }
pid=\$(cat logs/train.pid)
if kill -TERM -- \"-\$pid\" 2>/dev/null; then
  for _ in \$(seq 30); do kill -0 -- \"-\$pid\" 2>/dev/null || break; sleep 1; done
  kill -KILL -- \"-\$pid\" 2>/dev/null || true
  echo \"\$(hostname): stopped \$pid\"
else
  echo \"\$(hostname): job \$pid had already ended\"
fi
rm -f logs/train.pid"
}

cmd_delete() {
  if [ "$yes" = 1 ]; then
    gcloud_tpu delete --quiet
  else
    gcloud_tpu delete
  fi
}

cd "$(dirname "$0")/.."

[ $# -gt 0 ] || { usage >&2; exit 2; }
case $1 in
  -h|--help) usage; exit 0 ;;
  create|setup|run|logs|stop|delete) subcommand=$1; shift ;;
  *) die "unknown subcommand '$1'; one of create, setup, run, logs, stop, delete (see --help)" ;;
esac

name=${TPU_NAME:-} zone="" project="" accelerator=v5p-64 version="" spot=0 repo="" ref=""
remote_dir=amrsd config="" worker=0 yes=0 dry_run=0
overrides=() command=()
while [ $# -gt 0 ]; do
  case $1 in
    --name|--zone|--project|--accelerator|--version|--repo|--ref|--remote-dir|--config|--worker)
      need_value "$1" $# "${2:-}"
      set -- "$1=$2" "${@:3}" ;;
    --name=*) name=${1#*=}; shift ;;
    --zone=*) zone=${1#*=}; shift ;;
    --project=*) project=${1#*=}; shift ;;
    --accelerator=*) accelerator=${1#*=}; shift ;;
    --version=*) version=${1#*=}; shift ;;
    --repo=*) repo=${1#*=}; shift ;;
    --ref=*) ref=${1#*=}; shift ;;
    --remote-dir=*) remote_dir=${1#*=}; shift ;;
    --config=*) config=${1#*=}; shift ;;
    --config.*) overrides+=("$1"); shift ;;
    --worker=*) worker=${1#*=}; shift ;;
    --spot) spot=1; shift ;;
    --yes) yes=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; command=("$@"); [ ${#command[@]} -gt 0 ] || die "nothing after --"; break ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

[ -n "$name" ] || die "--name is required (or set TPU_NAME)"
[[ $worker == all || $worker =~ ^[0-9]+$ ]] || die "--worker '$worker' must be a worker number or 'all'"
[[ -z $remote_dir || $remote_dir == /* || $remote_dir == *..* ]] \
  && die "--remote-dir '$remote_dir' must be a relative folder under the workers' home, e.g. amrsd"
[ -z "$ref" ] || [ -n "$repo" ] || die "--ref needs --repo"
if [ "$subcommand" != run ] && { [ ${#command[@]} -gt 0 ] || [ -n "$config" ] || [ ${#overrides[@]} -gt 0 ]; }; then
  die "--config, --config.* and '-- COMMAND' belong to 'run', not '$subcommand'"
fi
if [ ${#command[@]} -gt 0 ] && { [ -n "$config" ] || [ ${#overrides[@]} -gt 0 ]; }; then
  die "--config and --config.* go to amrsd.train; with '-- COMMAND' put them in COMMAND"
fi
if [ "$dry_run" = 0 ] && ! command -v gcloud >/dev/null 2>&1; then
  die "gcloud not found; install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install)"
fi

location=()
[ -z "$zone" ] || location+=(--zone "$zone")
[ -z "$project" ] || location+=(--project "$project")

"cmd_$subcommand"
