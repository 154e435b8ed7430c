# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugin_utils/_selftest.py: the comparisons, and the sequence on a simulated worker whose answers are
tampered with, one operation at a time, as a host that breaks the contract would answer."""

from __future__ import annotations

import base64
import copy

import pytest
import simworker

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils import _selftest as selftest
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.operations import OPERATIONS
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.state import run_operation
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._selftest import (
    Options,
    file_differences,
    rights_differences,
    run_selftest,
    shape_differences,
)

USER_SID = "S-1-5-21-3623811015-3361044348-30300820-1003"
READ_ACCOUNT = {
    "hostname": "WORKER-01", "sid": USER_SID, "name": r"WORKER-01\cmf-selftest", "domain": "WORKER-01", "type": "user",
    "enabled": False, "groups": [], "rights": [], "group_rights": {}, "local_groups": [{"name": "Users", "sid": "S-1-5-32-545"}],
    "group_members": {}, "connection_sid": "S-1-5-21-3623811015-3361044348-30300820-1000",
}


def test_a_contract_shaped_account_report_has_no_difference():
    assert shape_differences("read_account", READ_ACCOUNT) == []


def test_rights_as_an_empty_list_is_right_and_null_is_a_difference():
    assert rights_differences(READ_ACCOUNT, "SeBatchLogonRight", held=False) == []
    broken = {**READ_ACCOUNT, "rights": None}  # what PowerShell makes of an unwrapped empty list
    assert shape_differences("read_account", broken) == ["rights is null, not list"]
    assert rights_differences(broken, "SeBatchLogonRight", held=False) == ["rights is NoneType, not a list"]


def test_missing_and_mistyped_fields_are_named_with_their_place():
    broken = copy.deepcopy(READ_ACCOUNT)
    del broken["connection_sid"]
    broken["enabled"] = "True"  # a string where the contract has a bool
    broken["local_groups"][0]["sid"] = 545
    assert sorted(shape_differences("read_account", broken)) == [
        "connection_sid is missing",
        "enabled is str, not bool",
        "local_groups[0].sid is int, not str",
    ]


def test_a_bool_is_not_an_int_and_a_missing_parent_is_named_once():
    assert shape_differences("control_service", {
        "changed": False, "state": "running", "restarted": False, "healthy": True, "pid": True, "previous_pid": None,
        "error": None, "log_tail": [],
    }) == ["pid is bool, not int or null"]
    assert shape_differences("sandbox", {"group": {"name": "xg", "sid": None}, "folder": "C:\\Windows\\Temp\\x"}) == ["user is missing"]
    assert shape_differences("read_file", ["exists"]) == ["the answer is list, not an object"]


def test_v2_fields_are_typed_when_present_and_required_only_on_request():
    answer = {"sha256": "ab" * 32, "backup_file": None}
    assert shape_differences("write_file", answer) == []
    assert shape_differences("write_file", answer, require_v2=True) == ["warnings is missing"]
    assert shape_differences("write_file", {**answer, "warnings": "left ~cmf1.tmp"}) == ["warnings is str, not list"]
    assert shape_differences("write_file", {**answer, "warnings": []}, require_v2=True) == []


def test_every_operation_has_a_shape_and_v2_names_only_known_operations():
    assert set(selftest.SHAPES) == set(OPERATIONS)
    assert set(selftest.V2_SHAPES) <= set(OPERATIONS)


def test_file_differences_compare_bytes_and_hash():
    data = selftest.TEST_BYTES
    good = {"exists": True, "content": base64.b64encode(data).decode(), "sha256": selftest.sha256_hex(data)}
    assert file_differences(good, data) == []
    upper = {**good, "sha256": good["sha256"].upper()}
    assert file_differences(upper, data) == [f"sha256 is {upper['sha256']!r}, not {good['sha256']} (lower-case hex of the bytes)"]
    # what a host that re-encodes text (BOM, lost CRLF) would give back
    reencoded = "\ufeff".encode() + data.replace(b"\r\n", b"\n")
    assert file_differences({**good, "content": base64.b64encode(reencoded).decode()}, data)[0].startswith("content reads back as")
    assert file_differences({"exists": False, "content": "", "sha256": ""}, None) == []
    assert file_differences({"exists": False, "content": "", "sha256": None}, None) == ["sha256 is None, not '' for a file that does not exist"]


class TamperedHost:
    """The simulated worker, with one operation's answers passed through ``tamper``."""

    def __init__(self, state_path, operation: str | None = None, tamper=None) -> None:
        self.state_path, self.operation, self.tamper, self.calls = str(state_path), operation, tamper, []

    def call(self, operation: str, /, **parameters) -> dict:
        self.calls.append(operation)
        answer = run_operation(self.state_path, operation, parameters)
        return self.tamper(answer, parameters) if operation == self.operation else answer


def _run(tmp_path, operation=None, tamper=None, **options):
    state = simworker.example_state()
    path = simworker.save_state(tmp_path / "worker-01.yml", state)
    host = TamperedHost(path, operation, tamper)
    result = run_selftest(host, Options(service="DeadlineWorker", config_path=simworker.WORKER_TOML, **options))
    after = simworker.load_state(path)
    for key in ("calls", "calls_total"):
        after.pop(key, None)
    return result, host, after == state


def test_the_untampered_simulated_worker_passes_every_step(tmp_path):
    result, host, unchanged = _run(tmp_path)
    assert result.ok and unchanged
    assert set(host.calls) == set(OPERATIONS)
    assert host.calls[0] == "sandbox" and host.calls[-3:-1] == ["sandbox", "sandbox"]


def _drop_sha256(answer, parameters):
    return {k: v for k, v in answer.items() if k != "sha256"}


def _rights_as_null(answer, parameters):
    return {**answer, "rights": answer["rights"] or None}


def _reencode(answer, parameters):
    if not answer["exists"]:
        return answer
    data = base64.b64decode(answer["content"]).replace(b"\r\n", b"\n")
    return {**answer, "content": base64.b64encode(data).decode()}


def _grant_ignored(answer, parameters):
    return {**answer, "added": []} if parameters["state"] == "present" else answer


def _restarted(answer, parameters):
    return {**answer, "changed": True, "restarted": True, "pid": 9999}


@pytest.mark.parametrize(
    ("operation", "tamper", "step", "difference"),
    [
        ("read_file", _drop_sha256, "read_file absent", "sha256 is missing"),
        ("read_account", _rights_as_null, "read_account sandbox user", "rights is null, not list"),
        ("read_file", _reencode, "read_file back", "content reads back as"),
        ("set_user_rights", _grant_ignored, "set_user_rights present", "added is [], not ['SeBatchLogonRight', 'SeIncreaseQuotaPrivilege']"),
        ("control_service", _restarted, "control_service started", "changed is True, not False"),
    ],
)
def test_a_wrong_answer_is_reported_as_a_difference_and_the_sandbox_is_removed(tmp_path, operation, tamper, step, difference):
    result, host, unchanged = _run(tmp_path, operation, tamper)
    assert not result.ok
    assert step in result.failed_steps
    line = next(line for line in result.lines if line.startswith(f"{step}: "))
    assert difference in line
    assert unchanged and host.calls.count("sandbox") == 3


def test_a_refused_sandbox_stops_the_sequence_but_still_cleans_up(tmp_path):
    def refuse(answer, parameters):
        if parameters["state"] == "present":
            raise selftest.HostOperationError("HOST_ERROR", "sandbox failed on the host: Access is denied")
        return answer

    result, host, unchanged = _run(tmp_path, "sandbox", refuse)
    assert result.lines[0] == "sandbox present: refused with HOST_ERROR: sandbox failed on the host: Access is denied"
    # the host made the sandbox before its answer went wrong: the cleanup finds and removes it
    assert [s.name for s in result.steps] == ["sandbox present", "sandbox absent", "sandbox absent again", "read_account removed user"]
    assert result.failed_steps == ["sandbox present"]
    assert unchanged and host.calls == ["sandbox", "sandbox", "sandbox", "read_account"]


def test_a_stale_hash_that_is_accepted_is_a_difference(tmp_path):
    class AcceptsStale(TamperedHost):
        def call(self, operation, /, **parameters):
            if operation == "write_file" and parameters["expected_sha256"] == selftest.sha256_hex(selftest.OTHER_BYTES):
                self.calls.append(operation)
                return {"sha256": parameters["expected_sha256"], "backup_file": None}
            return super().call(operation, **parameters)

    path = simworker.save_state(tmp_path / "worker-01.yml", simworker.example_state())
    result = run_selftest(AcceptsStale(path), Options(service="DeadlineWorker", config_path=simworker.WORKER_TOML))
    assert "write_file stale hash: succeeded where the contract says FILE_CHANGED" in result.lines


class LeavesAnAsideFile(TamperedHost):
    """A host whose replace without a backup leaves the swapped-out original beside the file."""

    def call(self, operation, /, **parameters):
        answer = super().call(operation, **parameters)
        if operation == "write_file" and parameters["expected_sha256"] and not parameters["backup"]:
            state = simworker.load_state(self.state_path)
            folder = parameters["path"].rpartition("\\")[0]
            state["files"][folder + r"\~cmf1a2b3c.old"] = {"text": "left behind"}
            simworker.save_state(self.state_path, state)
        return answer


def test_a_replace_that_leaves_a_file_behind_is_a_difference(tmp_path):
    path = simworker.save_state(tmp_path / "worker-01.yml", simworker.example_state())
    result = run_selftest(LeavesAnAsideFile(path), Options(service="DeadlineWorker", config_path=simworker.WORKER_TOML))
    assert result.failed_steps == ["sandbox absent"]
    assert "the sandbox folder held ['~cmf1a2b3c.old'], left behind" in next(line for line in result.lines if line.startswith("sandbox absent:"))


def _no_backup(answer, parameters):
    return {**answer, "backup_file": None} if parameters["backup"] else answer


class GrantsUnknownRights(TamperedHost):
    def call(self, operation, /, **parameters):
        if operation == "set_user_rights" and selftest.UNKNOWN_RIGHT_NAME in parameters["rights"]:
            self.calls.append(operation)
            return {"added": parameters["rights"], "removed": [], "before": [], "report": {}}
        return super().call(operation, **parameters)


def test_a_backup_that_is_not_made_and_an_unknown_right_that_is_granted_are_differences(tmp_path):
    result, _host, unchanged = _run(tmp_path, "write_file", _no_backup)
    assert "write_file replace with backup" in result.failed_steps and unchanged
    path = simworker.save_state(tmp_path / "unknown.yml", simworker.example_state())
    result = run_selftest(GrantsUnknownRights(path), Options(service="DeadlineWorker", config_path=simworker.WORKER_TOML))
    assert "set_user_rights unknown right: succeeded where the contract says UNKNOWN_RIGHT" in result.lines


def test_the_canary_takes_every_path_of_a_converge(tmp_path):
    result, _host, _unchanged = _run(tmp_path)
    names = [step.name for step in result.steps]
    for step in (
        "write_file replace",  # worker.toml replaced without a backup
        "write_file replace with backup",  # and with one
        "read_file backup",
        "set_user_rights unknown right",
        "read_agent_info",
        "read_agent_info sandbox account",  # the reading of a named account
        "set_group_membership absent",
    ):
        assert step in names, step
