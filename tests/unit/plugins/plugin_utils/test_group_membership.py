# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import copy

import pytest
import simworker

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host import HostOperationError
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.accounts import (
    account_report,
    set_group_membership,
)
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.state import SimulatedState
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.accounts import (
    GROUP_NOT_FOUND,
    REMOVAL_REFUSED,
    AccountError,
)
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.groups import (
    member_enabled,
    plan_membership,
    removal_refusal,
    report_with_groups,
    resolve_groups,
)
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.user_rights import effective_rights

ADMINISTRATOR = "S-1-5-21-3623811015-3361044348-30300820-500"
ANSIBLE = "S-1-5-21-3623811015-3361044348-30300820-1000"
AGENT = "S-1-5-21-3623811015-3361044348-30300820-1001"
ADMINISTRATORS = {"name": "Administrators", "sid": "S-1-5-32-544"}
BACKUP_OPERATORS = {"name": "Backup Operators", "sid": "S-1-5-32-551"}
ORPHAN = "S-1-5-21-3623811015-3361044348-30300820-1107"


@pytest.fixture
def state() -> SimulatedState:
    return SimulatedState(simworker.example_state())


def test_report_of_the_installer_default(state):
    report = account_report(state, r".\deadline-worker")
    assert report["sid"] == AGENT
    assert [g["name"] for g in report["groups"]] == ["Administrators", "deadline-job-users", "Users"]
    assert report["connection_sid"] == ANSIBLE
    assert [m["sid"] for m in report["group_members"]["S-1-5-32-544"]] == [ADMINISTRATOR, ANSIBLE, AGENT]
    assert report["rights"] == ["SeAssignPrimaryTokenPrivilege", "SeServiceLogonRight"]
    assert effective_rights(report)["SeShutdownPrivilege"] == [ADMINISTRATORS]


def test_report_survives_orphaned_members_and_flags_them(state):
    state.data["accounts"]["S-1-5-32-544"]["members"].append(ORPHAN)
    report = account_report(state, AGENT)
    orphan = next(m for m in report["group_members"]["S-1-5-32-544"] if m["sid"] == ORPHAN)
    assert orphan == {"sid": ORPHAN, "name": ORPHAN, "type": "unknown", "enabled": False, "orphaned": True}


def test_plan_present_and_absent_by_sid(state):
    report = account_report(state, "deadline-worker")
    plan = plan_membership(report, ["S-1-5-32-551", "users"], "present")
    assert plan.added == [BACKUP_OPERATORS]
    assert plan.removed == []
    assert BACKUP_OPERATORS in plan.after
    plan = plan_membership(report, ["Administrators", "Backup Operators", "S-1-5-32-544"], "absent")
    assert plan.removed == [ADMINISTRATORS]  # once, though named twice; Backup Operators is no change
    assert ADMINISTRATORS not in plan.after
    assert plan.before == [{"name": g["name"], "sid": g["sid"]} for g in report["groups"]]


def test_check_mode_report_drops_the_groups_rights(state):
    report = account_report(state, "deadline-worker")
    after = report_with_groups(report, plan_membership(report, ["Administrators"], "absent").after)
    assert "SeShutdownPrivilege" not in effective_rights(after)
    assert "S-1-5-32-544" not in {g["sid"] for g in after["token_groups"]} and "S-1-5-32-544" not in after["group_rights"]
    # Contract v2: read_account reads the rights of the groups of the account's token only, so a
    # group the plan joins brings no rights into the prediction (the reading after the change has them).
    assert set(report["group_rights"]) == {g["sid"] for g in report["token_groups"]}
    assert {g["sid"] for g in report["groups"]} <= set(report["group_rights"])
    joined = report_with_groups(report, plan_membership(report, ["Backup Operators"], "present").after)
    assert BACKUP_OPERATORS not in effective_rights(joined)["SeBackupPrivilege"]  # it comes via Administrators only
    assert BACKUP_OPERATORS["sid"] in {g["sid"] for g in joined["token_groups"]}


def test_missing_groups_are_all_named(state):
    report = account_report(state, "deadline-worker")
    with pytest.raises(AccountError) as error:
        plan_membership(report, ["Users", "Render Wranglers", "S-1-5-32-999"], "present")
    assert error.value.code == GROUP_NOT_FOUND
    assert "Render Wranglers" in error.value.message and "S-1-5-32-999" in error.value.message
    assert "Backup Operators" in error.value.message  # the groups that exist are listed


def test_resolve_groups_on_a_localized_host():
    local = [{"name": "Administrateurs", "sid": "S-1-5-32-544"}]
    assert resolve_groups(["Administrators", "administrateurs"], local, "PC") == [{"name": "Administrateurs", "sid": "S-1-5-32-544"}]


def refusal_for(state, account: str) -> str | None:
    return removal_refusal(account_report(state, account), ADMINISTRATORS)


def test_refuses_the_connecting_account(state):
    message = refusal_for(state, "ansible")
    assert "connected as" in message and r"WORKER-01\ansible" in message and "nothing was changed" in message


def test_refuses_the_builtin_administrator(state):
    assert "RID 500" in refusal_for(state, "Administrator")
    # even when Ansible connects as someone else and other admins remain
    state.data["connection_account"] = AGENT
    assert "RID 500" in refusal_for(state, "Administrator")


def test_refuses_to_leave_no_enabled_member(state):
    state.data["connection_account"] = "S-1-5-21-1-2-3-4001"
    state.data["accounts"][ADMINISTRATOR]["enabled"] = False
    state.data["accounts"][ANSIBLE]["enabled"] = False
    state.data["accounts"]["S-1-5-32-544"]["members"].append(ORPHAN)
    assert "no enabled member" in refusal_for(state, "deadline-worker")
    state.data["accounts"][ANSIBLE]["enabled"] = True
    assert refusal_for(state, "deadline-worker") is None


def test_other_groups_are_not_guarded(state):
    report = account_report(state, "ansible")
    assert removal_refusal(report, {"name": "Users", "sid": "S-1-5-32-545"}) is None
    assert plan_membership(report, ["Users"], "absent").removed == [{"name": "Users", "sid": "S-1-5-32-545"}]


def test_a_member_group_counts_as_enabled_an_orphan_does_not():
    assert member_enabled({"sid": "S-1-5-21-1-2-3-512", "type": "group", "enabled": True})
    assert not member_enabled({"sid": ORPHAN, "orphaned": True, "enabled": True})
    assert not member_enabled({"sid": AGENT, "type": "user", "enabled": False})


def test_plan_refuses_before_any_change(state):
    report = account_report(state, "ansible")
    with pytest.raises(AccountError) as error:
        plan_membership(report, ["Users", "Administrators"], "absent")
    assert error.value.code == REMOVAL_REFUSED


def test_simulated_refusal_leaves_the_state_as_it_was(state):
    before = copy.deepcopy(state.data)
    with pytest.raises(HostOperationError) as error:
        set_group_membership(state, {"account": "ansible", "groups": ["Users", "Administrators"], "state": "absent"})
    assert error.value.code == REMOVAL_REFUSED
    assert state.data == before


def test_simulated_removal_reports_before_and_after(state):
    done = set_group_membership(state, {"account": "deadline-worker", "groups": ["S-1-5-32-544"], "state": "absent"})
    assert done["removed"] == [ADMINISTRATORS]
    assert ADMINISTRATORS in done["before"]
    assert ADMINISTRATORS not in done["report"]["groups"]
    assert AGENT not in state.data["accounts"]["S-1-5-32-544"]["members"]
