"""amrsd.distributed: the AMRSD_* environment and the single-process path."""

import jax
import pytest

from amrsd import distributed
from amrsd.distributed import ProcessGroup

GROUP = {"AMRSD_COORDINATOR": "10.0.0.2:12355", "AMRSD_NUM_PROCESSES": "4", "AMRSD_PROCESS_ID": "3"}


def test_no_variables_means_one_process():
  assert distributed.process_group_from_env({}) is None


def test_one_process_needs_no_coordinator():
  assert distributed.process_group_from_env({"AMRSD_NUM_PROCESSES": "1",
                                             "AMRSD_PROCESS_ID": "0"}) is None


def test_initialize_is_a_no_op_for_one_process():
  assert distributed.initialize({}) is None
  assert distributed.initialize({"AMRSD_NUM_PROCESSES": "1"}) is None
  assert not jax.distributed.is_initialized()
  assert jax.process_count() == 1
  assert distributed.is_primary()


def test_full_group_is_parsed():
  assert distributed.process_group_from_env(GROUP) == ProcessGroup("10.0.0.2:12355", 4, 3, 300)
  timed = {**GROUP, "AMRSD_INIT_TIMEOUT": " 30 "}
  assert distributed.process_group_from_env(timed).timeout_s == 30


def test_tpu_pod_flag_leaves_the_rest_to_jax():
  assert distributed.process_group_from_env({"AMRSD_TPU_POD": "1"}) == ProcessGroup(None, None, None,
                                                                                   300)
  assert distributed.process_group_from_env({"AMRSD_TPU_POD": "0"}) is None


def test_ipv6_coordinator_is_accepted():
  group = distributed.process_group_from_env({**GROUP, "AMRSD_COORDINATOR": "[fd00::2]:8476"})
  assert group.coordinator == "[fd00::2]:8476"


@pytest.mark.parametrize("changes, message", [
    ({"AMRSD_NUM_PROCESSES": "four"}, "AMRSD_NUM_PROCESSES='four' is not an integer"),
    ({"AMRSD_NUM_PROCESSES": "0"}, "AMRSD_NUM_PROCESSES=0 must be at least 1"),
    ({"AMRSD_PROCESS_ID": "-1"}, "AMRSD_PROCESS_ID=-1 must be at least 0"),
    ({"AMRSD_PROCESS_ID": "4"}, "AMRSD_PROCESS_ID=4 must be below AMRSD_NUM_PROCESSES=4"),
    ({"AMRSD_COORDINATOR": "10.0.0.2"}, "AMRSD_COORDINATOR='10.0.0.2' must be host:port"),
    ({"AMRSD_COORDINATOR": "host:99999"}, "AMRSD_COORDINATOR='host:99999' must be host:port"),
    ({"AMRSD_COORDINATOR": ":12355"}, "AMRSD_COORDINATOR=':12355' must be host:port"),
    ({"AMRSD_COORDINATOR": ""}, "AMRSD_COORDINATOR not set"),
    ({"AMRSD_PROCESS_ID": ""}, "AMRSD_PROCESS_ID not set"),
    ({"AMRSD_TPU_POD": "maybe"}, "AMRSD_TPU_POD='maybe' is not a flag"),
    ({"AMRSD_INIT_TIMEOUT": "0"}, "AMRSD_INIT_TIMEOUT=0 must be at least 1"),
])
def test_bad_values_name_the_variable(changes, message):
  with pytest.raises(ValueError) as error:
    distributed.process_group_from_env({**GROUP, **changes})
  assert message in str(error.value)


def test_initialize_rejects_bad_values_before_touching_jax():
  with pytest.raises(ValueError, match="AMRSD_NUM_PROCESSES"):
    distributed.initialize({"AMRSD_NUM_PROCESSES": "2"})
  assert not jax.distributed.is_initialized()
