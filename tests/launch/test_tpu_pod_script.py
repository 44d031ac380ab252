"""launch/tpu_pod.sh: the gcloud commands it would run, and its remote job control run locally."""

import os
import re
import shlex
import shutil
import subprocess
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TPU = ["gcloud", "compute", "tpus", "tpu-vm"]
WHERE = ["--zone", "us-east5-a", "--project", "my-proj"]


@pytest.fixture(scope="module")
def path_without_gcloud(tmp_path_factory):
  """A PATH holding only the tools the script itself uses, so gcloud is not installed."""
  bin_dir = tmp_path_factory.mktemp("bin")
  for tool in ("dirname", "sed"):
    os.symlink(shutil.which(tool), bin_dir / tool)
  return str(bin_dir)


def tpu_pod(*args, path=None):
  env = dict(os.environ, PATH=path or os.environ["PATH"])
  env.pop("TPU_NAME", None)
  return subprocess.run(["/bin/bash", "launch/tpu_pod.sh", *args], cwd=REPO, capture_output=True,
                        text=True, timeout=30, env=env)


def dry_run(subcommand, *args, path=None):
  """The commands a subcommand prints, each split into words."""
  result = tpu_pod(subcommand, "--name", "pod-1", "--zone", "us-east5-a", "--project", "my-proj",
                   "--dry-run", *args, path=path)
  assert result.returncode == 0, result.stderr
  # Remote scripts span several lines inside one quoted word: split the whole output.
  words = shlex.split(result.stdout, comments=True)
  commands, start = [], 0
  for i, word in enumerate(words):
    if word == "gcloud" and i > start:
      commands.append(words[start:i])
      start = i
  commands.append(words[start:])
  return commands


def remote_script(command):
  assert command[:5] == TPU + ["ssh"] and command[5] == "pod-1"
  return command[command.index("--command") + 1]


@pytest.mark.parametrize("subcommand", ["create", "setup", "run", "logs", "stop", "delete"])
def test_dry_run_needs_no_gcloud_and_prints_valid_shell(subcommand, path_without_gcloud):
  commands = dry_run(subcommand, path=path_without_gcloud)
  gcloud = [c for c in commands if c[0] == "gcloud"]
  assert gcloud and all(c[:4] == TPU and c[6:10] == WHERE or c[4] == "scp" for c in gcloud)
  for command in gcloud:
    if command[4] == "ssh":
      check = subprocess.run(["bash", "-n", "-c", remote_script(command)], capture_output=True,
                             text=True)
      assert check.returncode == 0, check.stderr


def test_without_dry_run_a_missing_gcloud_is_reported(path_without_gcloud):
  result = tpu_pod("stop", "--name", "pod-1", path=path_without_gcloud)
  assert result.returncode != 0 and "gcloud not found" in result.stderr


def test_create_uses_the_runtime_for_the_accelerator():
  (create,) = [c for c in dry_run("create", "--accelerator", "v6e-16", "--spot") if c[0] == "gcloud"]
  assert create == TPU + ["create", "pod-1"] + WHERE + [
      "--accelerator-type", "v6e-16", "--version", "v2-alpha-tpuv6e", "--spot"]


def test_setup_copies_to_every_worker_and_installs_pinned_jax_tpu():
  pack, scp, unpack, install, check = dry_run("setup")
  assert pack[:2] == ["git", "ls-files"]
  assert scp[:5] == TPU + ["scp"] and "--worker=all" in scp
  assert scp[6] == "pod-1:amrsd-code.tar.gz"
  pinned = re.search(r"^jax==(\S+)$", open(os.path.join(REPO, "requirements.txt")).read(), re.M)[1]
  for command in (unpack, install, check):
    assert "--worker=all" in command
  assert f'"jax[tpu]=={pinned}"' in remote_script(install)
  assert "bash launch/setup.sh" in remote_script(install)
  assert "AMRSD_TPU_POD=1" in remote_script(check)


def test_setup_from_a_repository_clones_on_every_worker():
  clone, _, _ = dry_run("setup", "--repo", "https://example.com/me/amrsd.git", "--ref", "v1.0")
  script = remote_script(clone)
  assert "--worker=all" in clone
  assert "git clone --quiet https://example.com/me/amrsd.git amrsd" in script
  assert "fetch --quiet origin v1.0" in script


def test_run_starts_the_same_train_command_on_every_worker():
  (run,) = dry_run("run", "--config", "configs/amrsd.py", "--config.workdir=gs://b/run 1",
                   "--config.note=it's")
  assert "--worker=all" in run
  (line,) = [l for l in remote_script(run).splitlines() if "amrsd.train" in l]
  words = shlex.split(line)
  assert words[:4] == ["AMRSD_TPU_POD=1", "setsid", "nohup", ".venv/bin/python"]
  assert words[4:9] == ["-m", "amrsd.train", "--config=configs/amrsd.py",
                        "--config.workdir=gs://b/run 1", "--config.note=it's"]
  assert words[9:11] == [">", "$log"]


def test_logs_follow_one_worker():
  (logs,) = dry_run("logs", "--worker", "3")
  assert "--worker=3" in logs
  assert remote_script(logs) == "tail -v -n 200 -F amrsd/logs/train-$(hostname).log"


def test_delete_with_yes_does_not_ask():
  (delete,) = dry_run("delete", "--yes")
  assert delete == TPU + ["delete", "pod-1"] + WHERE + ["--quiet"]


def test_run_and_stop_scripts_control_a_local_job(tmp_path):
  """The remote halves of run and stop, executed here with a stand-in job."""
  (run,) = dry_run("run", "--remote-dir", "code", "--", "sh", "-c",
                   'echo "pod flag $AMRSD_TPU_POD"; exec sleep 60')
  (stop,) = dry_run("stop", "--remote-dir", "code")
  (tmp_path / "code").mkdir()

  def remote(script):
    return subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)

  pid_file = tmp_path / "code" / "logs" / "train.pid"
  try:
    started = remote(remote_script(run))
    assert started.returncode == 0, started.stderr
    pid = int(pid_file.read_text())
    os.kill(pid, 0)  # alive, after the launching shell has exited
    again = remote(remote_script(run))
    assert again.returncode != 0 and "still running" in again.stderr
    stopped = remote(remote_script(stop))
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
    with pytest.raises(ProcessLookupError):
      _wait_gone(pid)
    assert not pid_file.exists()
    (log,) = (tmp_path / "code" / "logs").glob("train-*.log")
    assert log.read_text().strip() == "pod flag 1"
  finally:
    if pid_file.exists():
      os.killpg(int(pid_file.read_text()), 9)


def _wait_gone(pid):
  """Raises ProcessLookupError once pid has exited and been reaped (init reaps it)."""
  for _ in range(100):
    os.kill(pid, 0)
    time.sleep(0.05)


def test_help_exits_zero():
  result = tpu_pod("--help")
  assert result.returncode == 0 and "Subcommands:" in result.stdout


@pytest.mark.parametrize("args, message", [
    ([], "Usage:"),
    (["launch", "--name", "p"], "unknown subcommand 'launch'"),
    (["run", "--name", "p", "--bogus"], "unknown option '--bogus'"),
    (["run"], "--name is required"),
    (["run", "--name"], "--name needs a value"),
    (["run", "--name", "--zone", "z"], "--name needs a value"),
    (["stop", "--name", "p", "--config.x=1"], "belong to 'run'"),
    (["logs", "--name", "p", "--worker", "first"], "must be a worker number or 'all'"),
    (["setup", "--name", "p", "--remote-dir", "/abs"], "must be a relative folder"),
    (["setup", "--name", "p", "--ref", "main"], "--ref needs --repo"),
    (["create", "--name", "p", "--accelerator", "tpu7x-8"], "pass --version"),
])
def test_bad_arguments_fail_with_a_message(args, message):
  result = tpu_pod(*args[:1], "--dry-run", *args[1:]) if args else tpu_pod()
  assert result.returncode != 0
  assert message in result.stderr
