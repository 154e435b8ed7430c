# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The simulated worker's sandbox operation, as sandbox.ps1 does it: idempotent both ways, and
nothing of the sandbox user left behind (no right, no membership, no file)."""

from __future__ import annotations

import pytest
import simworker

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.errors import HostOperationError
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.sandbox import MARKER
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.state import run_operation

MACHINE = "S-1-5-21-3623811015-3361044348-30300820"


@pytest.fixture
def worker(tmp_path):
    state = simworker.example_state()
    path = simworker.save_state(tmp_path / "worker-01.yml", state)

    def call(operation: str, **parameters) -> dict:
        return run_operation(str(path), operation, parameters)

    return call, path, state


def _without_calls(state: dict) -> dict:
    return {k: v for k, v in state.items() if k not in ("calls", "calls_total")}


def test_present_makes_a_disabled_user_and_an_empty_group_in_the_machine_domain(worker):
    call, path, _state = worker
    box = call("sandbox", name="cmf-selftest", state="present")
    assert box == {
        "user": {"name": "cmf-selftest", "sid": f"{MACHINE}-1003"},  # after the highest RID, 1002
        "group": {"name": "cmf-selftestg", "sid": f"{MACHINE}-1004"},
        "folder": r"C:\Windows\Temp\cmf-selftest",
        "files": [".deadline-cloud-cmf-sandbox"],
    }
    assert call("sandbox", name="cmf-selftest", state="present") == box
    accounts = simworker.load_state(path)["accounts"]
    assert accounts[f"{MACHINE}-1003"] == {"name": "cmf-selftest", "type": "user", "enabled": False, "description": MARKER}
    assert accounts[f"{MACHINE}-1004"] == {"name": "cmf-selftestg", "type": "group", "members": [], "description": MARKER}
    assert simworker.load_state(path)["files"][r"C:\Windows\Temp\cmf-selftest\.deadline-cloud-cmf-sandbox"]["text"] == ""
    # made as sandbox.ps1 makes it: Administrators' own, writable by SYSTEM and Administrators alone
    assert simworker.load_state(path)["folder_security"] == {
        r"C:\Windows\Temp\cmf-selftest": {"owner": "S-1-5-32-544", "acl": "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"}
    }
    report = call("read_account", account=r".\cmf-selftest")
    assert (report["sid"], report["enabled"], report["rights"], report["groups"]) == (f"{MACHINE}-1003", False, [], [])


def test_on_a_domain_member_the_user_takes_the_next_rid_of_the_machine_not_of_the_domain(tmp_path):
    # CORP's accounts (RIDs up to 1130) are not the machine's: its own highest RID is still 1002.
    path = simworker.save_state(tmp_path / "worker-01.yml", simworker.domain_state())
    box = run_operation(str(path), "sandbox", {"name": "cmf-selftest", "state": "present"})
    assert (box["user"]["sid"], box["group"]["sid"]) == (f"{MACHINE}-1003", f"{MACHINE}-1004")


def test_absent_takes_the_rights_and_memberships_away_first_and_leaves_the_state_as_it_was(worker):
    call, path, state = worker
    box = call("sandbox", name="cmf-selftest", state="present")
    user = box["user"]["sid"]
    call("set_user_rights", account=user, rights=["SeBatchLogonRight", "SeServiceLogonRight"], state="present")
    call("set_group_membership", account=user, groups=[box["group"]["sid"], "S-1-5-32-545"], state="present")
    call("write_file", path=box["folder"] + r"\a.txt", content="YQ==", expected_sha256="", backup=False)
    assert call("sandbox", name="cmf-selftest", state="absent") == {**box, "files": [".deadline-cloud-cmf-sandbox", "a.txt"]}
    assert _without_calls(simworker.load_state(path)) == state
    with pytest.raises(HostOperationError) as refused:
        call("read_account", account=user)
    assert refused.value.code == "ACCOUNT_NOT_FOUND"
    assert call("sandbox", name="cmf-selftest", state="absent") == {
        "user": {"name": "cmf-selftest", "sid": None},
        "group": {"name": "cmf-selftestg", "sid": None},
        "folder": r"C:\Windows\Temp\cmf-selftest",
        "files": [],
    }


@pytest.mark.parametrize("name", ["", "a" * 20, r"..\x", "a b"])
def test_a_name_windows_would_not_take_is_refused_before_any_change(worker, name):
    call, path, state = worker
    with pytest.raises(HostOperationError) as refused:
        call("sandbox", name=name, state="present")
    assert refused.value.code == "INVALID_NAME"
    assert _without_calls(simworker.load_state(path)) == state


@pytest.mark.parametrize("state", ["present", "absent"])
@pytest.mark.parametrize(
    "squatter",
    [
        lambda s: s["accounts"].update({f"{MACHINE}-1100": {"name": "cmf-selftest", "type": "user"}}),
        lambda s: s["accounts"].update({f"{MACHINE}-1100": {"name": "cmf-selftestg", "type": "group", "members": [], "description": "Render team"}}),
        lambda s: s["files"].update({r"C:\Windows\Temp\cmf-selftest\notes.txt": {"text": "mine"}}),
    ],
    ids=["user", "group", "folder"],
)
def test_what_the_sandbox_did_not_make_is_neither_reused_nor_deleted(tmp_path, squatter, state):
    before = simworker.example_state()
    squatter(before)
    path = simworker.save_state(tmp_path / "worker.yml", before)
    with pytest.raises(HostOperationError) as refused:
        run_operation(str(path), "sandbox", {"name": "cmf-selftest", "state": state})
    assert refused.value.code == "SANDBOX_NOT_OURS" and "did not make" in refused.value.message
    assert _without_calls(simworker.load_state(path)) == before


FOLDER = r"C:\Windows\Temp\cmf-selftest"


@pytest.mark.parametrize("state", ["present", "absent"])
@pytest.mark.parametrize(
    ("security", "why"),
    [
        ({"owner": "S-1-5-32-544", "acl": "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1301bf;;;BU)"}, "S-1-5-32-545 may write"),
        ({"owner": "S-1-5-32-544", "acl": "D:(A;OICI;FA;;;BA)(A;;DCLC;;;S-1-5-21-1-2-3-1010)"}, "S-1-5-21-1-2-3-1010 may write"),
        ({"owner": "S-1-5-32-544", "acl": "D:(A;OICIIO;GA;;;CO)(A;OICI;FA;;;SY)"}, "S-1-3-0 may write"),
        ({"owner": f"{MACHINE}-1001", "acl": "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"}, f"owned by {MACHINE}-1001"),
        ({"owner": "S-1-5-32-544", "reparse_point": True}, "is a junction or symbolic link"),
    ],
    ids=["users-write", "a-user-adds-files", "creator-owner", "another-owner", "junction"],
)
def test_a_sandbox_folder_the_self_test_cannot_trust_is_neither_reused_nor_deleted(tmp_path, security, why, state):
    before = simworker.example_state()
    before["files"][FOLDER + r"\.deadline-cloud-cmf-sandbox"] = {"text": ""}  # the marker is no proof: anyone may write one
    before["folder_security"] = {FOLDER: security}
    path = simworker.save_state(tmp_path / "worker.yml", before)
    with pytest.raises(HostOperationError) as refused:
        run_operation(str(path), "sandbox", {"name": "cmf-selftest", "state": state})
    assert refused.value.code == "SANDBOX_NOT_OURS" and why in refused.value.message
    assert _without_calls(simworker.load_state(path)) == before


def test_a_sandbox_folder_readable_by_users_and_closed_to_their_writes_is_trusted(tmp_path):
    before = simworker.example_state()
    before["files"][FOLDER + r"\.deadline-cloud-cmf-sandbox"] = {"text": ""}
    before["folder_security"] = {FOLDER: {"owner": "S-1-5-18", "acl": "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;BU)(D;;FA;;;WD)"}}
    path = simworker.save_state(tmp_path / "worker.yml", before)
    box = run_operation(str(path), "sandbox", {"name": "cmf-selftest", "state": "absent"})
    assert box["files"] == [".deadline-cloud-cmf-sandbox"] and "folder_security" not in simworker.load_state(path)
