"""launch/multi_gpu.sh: flags and Slurm variables become the AMRSD_* environment of amrsd.train."""

import os
import shlex
import subprocess

import pytest

from amrsd import distributed

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def multi_gpu(*args, env=None):
  clean = {k: v for k, v in os.environ.items() if not k.startswith(("AMRSD_", "SLURM_"))}
  return subprocess.run(["bash", "launch/multi_gpu.sh", *args], cwd=REPO, capture_output=True,
                        text=True, timeout=30, env={**clean, **(env or {})})


def printed_command(result):
  """(environment assignments, command words) of a --dry-run line."""
  assert result.returncode == 0, result.stderr
  words = shlex.split(result.stdout)
  assert words[0] == "env"
  assignments = [w for w in words[1:] if w.startswith("AMRSD_")]
  return dict(a.split("=", 1) for a in assignments), words[1 + len(assignments):]


def test_dry_run_prints_the_train_command_with_coordinator_variables():
  env, command = printed_command(multi_gpu(
      "--coordinator", "10.0.0.2:12355", "--num-processes", "2", "--process-id", "1",
      "--config", "configs/amrsd.py", "--config.note=two words", "--config.seed=3", "--dry-run"))
  assert env == {"AMRSD_COORDINATOR": "10.0.0.2:12355", "AMRSD_NUM_PROCESSES": "2",
                 "AMRSD_PROCESS_ID": "1"}
  assert command == [".venv/bin/python", "-m", "amrsd.train", "--config=configs/amrsd.py",
                     "--config.note=two words", "--config.seed=3"]


def test_printed_variables_are_the_ones_amrsd_distributed_reads():
  env, _ = printed_command(multi_gpu("--coordinator=host-a:9000", "--num-processes=4",
                                     "--process-id=3", "--init-timeout=45", "--dry-run"))
  assert distributed.process_group_from_env(env) == distributed.ProcessGroup("host-a:9000", 4, 3, 45)


def test_slurm_supplies_rank_count_and_first_host():
  env, _ = printed_command(multi_gpu("--dry-run", "--port", "2222", env={
      "SLURM_NTASKS": "4", "SLURM_PROCID": "2", "SLURM_JOB_NODELIST": "gpu[03-06,09],cpu1"}))
  assert env == {"AMRSD_COORDINATOR": "gpu03:2222", "AMRSD_NUM_PROCESSES": "4",
                 "AMRSD_PROCESS_ID": "2"}


def test_flags_win_over_slurm():
  env, _ = printed_command(multi_gpu("--dry-run", "--coordinator", "head:1", "--process-id", "0",
                                     env={"SLURM_NTASKS": "2", "SLURM_PROCID": "1",
                                          "SLURM_JOB_NODELIST": "node1,node2"}))
  assert env == {"AMRSD_COORDINATOR": "head:1", "AMRSD_NUM_PROCESSES": "2", "AMRSD_PROCESS_ID": "0"}


def test_command_after_double_dash_replaces_train():
  _, command = printed_command(multi_gpu("--num-processes", "1", "--dry-run", "--",
                                         "python", "-m", "amrsd.evaluate", "--benchmarks=a b"))
  assert command == ["python", "-m", "amrsd.evaluate", "--benchmarks=a b"]


def test_missing_interpreter_is_reported_before_starting():
  result = multi_gpu("--num-processes", "1", "--python", "/nonexistent/python")
  assert result.returncode != 0
  assert "/nonexistent/python not found; run 'bash launch/setup.sh'" in result.stderr


def test_help_exits_zero():
  result = multi_gpu("--help")
  assert result.returncode == 0 and "--coordinator HOST:PORT" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "unknown option '--bogus'"),
    (["--dry-run"], "--num-processes is required"),
    (["--num-processes"], "--num-processes needs a value"),
    (["--num-processes", "two"], "--num-processes 'two' must be a positive integer"),
    (["--num-processes", "0"], "--num-processes '0' must be a positive integer"),
    (["--num-processes", "2", "--process-id", "2", "--coordinator", "h:1"], "must be below"),
    (["--num-processes", "2", "--process-id", "1"], "--coordinator HOST:PORT is required"),
    (["--num-processes", "2", "--coordinator", "h:1"], "--process-id is required"),
    (["--num-processes", "2", "--process-id", "1", "--coordinator", "h"], "must be HOST:PORT"),
    (["--num-processes", "1", "--config.x=1", "--", "true"], "put them in COMMAND"),
])
def test_bad_arguments_fail_with_a_message(args, message):
  result = multi_gpu("--dry-run", *args)
  assert result.returncode != 0
  assert message in result.stderr
  assert result.stdout == ""
