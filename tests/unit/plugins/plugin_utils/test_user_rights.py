# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.user_rights import (
    ALL_RIGHTS,
    DENY_OVERRIDES,
    UnknownRightError,
    canonical_right,
    canonical_rights,
    deny_warnings,
    effective_rights,
    held_rights,
    plan_rights,
)

ADMINISTRATORS = {"name": "Administrators", "sid": "S-1-5-32-544"}
USERS = {"name": "Users", "sid": "S-1-5-32-545"}


def report(rights=(), groups=(ADMINISTRATORS, USERS), group_rights=None) -> dict:
    return {
        "sid": "S-1-5-21-1-2-3-1001",
        "name": r"WORKER-01\deadline-worker",
        "rights": list(rights),
        "groups": list(groups),
        "group_rights": group_rights
        if group_rights is not None
        else {
            "S-1-5-32-544": ["SeShutdownPrivilege", "SeIncreaseQuotaPrivilege", "SeNetworkLogonRight"],
            "S-1-5-32-545": ["SeNetworkLogonRight"],
            "S-1-5-32-551": ["SeBackupPrivilege"],  # a group the account is not in
        },
    }


def test_canonical_case_order_and_no_repeats():
    assert canonical_rights(["seservicelogonright", "SESHUTDOWNPRIVILEGE", "SeServiceLogonRight"]) == [
        "SeServiceLogonRight",
        "SeShutdownPrivilege",
    ]
    assert canonical_right(" SeAssignPrimaryTokenPrivilege ") == "SeAssignPrimaryTokenPrivilege"
    assert canonical_right("SeNothing") is None


def test_unknown_rights_are_all_named_with_the_valid_ones():
    with pytest.raises(UnknownRightError) as error:
        canonical_rights(["SeServiceLogonRight", "SeMakeCoffeeRight", "ServiceLogon"])
    message = str(error.value)
    assert error.value.unknown == ["SeMakeCoffeeRight", "ServiceLogon"]
    assert "SeMakeCoffeeRight" in message and "ServiceLogon" in message
    for right in ALL_RIGHTS:
        assert right in message


def test_the_constants_the_agent_needs_exist():
    for right in ("SeServiceLogonRight", "SeAssignPrimaryTokenPrivilege", "SeIncreaseQuotaPrivilege", "SeShutdownPrivilege"):
        assert right in ALL_RIGHTS
    for deny, allow in DENY_OVERRIDES.items():
        assert deny in ALL_RIGHTS and allow in ALL_RIGHTS
        assert deny == allow.replace("Se", "SeDeny", 1)
    assert len(DENY_OVERRIDES) == 5


def test_plan_present_adds_only_what_is_missing():
    plan = plan_rights(["SeServiceLogonRight", "SeAssignPrimaryTokenPrivilege"], ["seincreasequotaprivilege", "SeServiceLogonRight"], "present")
    assert plan.added == ["SeIncreaseQuotaPrivilege"]
    assert plan.removed == []
    assert plan.before == ["SeAssignPrimaryTokenPrivilege", "SeServiceLogonRight"]
    assert plan.after == ["SeAssignPrimaryTokenPrivilege", "SeIncreaseQuotaPrivilege", "SeServiceLogonRight"]
    assert plan.changed


def test_plan_absent_removes_only_what_is_held_and_leaves_the_rest():
    plan = plan_rights(["SeServiceLogonRight", "SeDebugPrivilege"], ["SeDebugPrivilege", "SeShutdownPrivilege"], "absent")
    assert plan.removed == ["SeDebugPrivilege"]
    assert plan.added == []
    assert plan.after == ["SeServiceLogonRight"]


def test_plan_is_idempotent_and_accepts_host_spellings():
    plan = plan_rights(["seservicelogonright"], ["SeServiceLogonRight"], "present")
    assert not plan.changed
    assert plan.before == ["SeServiceLogonRight"]
    assert not plan_rights([], ["SeServiceLogonRight"], "absent").changed
    # a right unknown to this list, held on the host, is kept as the host spells it
    assert held_rights(["SeFutureRight", "SeShutdownPrivilege"]) == ["SeFutureRight", "SeShutdownPrivilege"]


def test_plan_rejects_unknown_state_and_rights():
    with pytest.raises(ValueError):
        plan_rights([], ["SeServiceLogonRight"], "pure")
    with pytest.raises(UnknownRightError):
        plan_rights([], ["SeNope"], "present")


def test_effective_rights_come_with_the_groups_they_come_from():
    effective = effective_rights(report(rights=["SeServiceLogonRight"]))
    assert effective == {
        "SeIncreaseQuotaPrivilege": [ADMINISTRATORS],
        "SeNetworkLogonRight": [ADMINISTRATORS, USERS],
        "SeShutdownPrivilege": [ADMINISTRATORS],
    }
    assert "SeBackupPrivilege" not in effective  # the account is not in Backup Operators


def test_effective_rights_after_leaving_administrators():
    effective = effective_rights(report(groups=[USERS]))
    assert effective == {"SeNetworkLogonRight": [USERS]}


def test_deny_held_directly_against_allow_held_directly():
    warnings = deny_warnings(report(rights=["SeServiceLogonRight", "SeDenyServiceLogonRight"]))
    assert len(warnings) == 1
    assert "SeServiceLogonRight (directly)" in warnings[0]
    assert "SeDenyServiceLogonRight (directly)" in warnings[0]
    assert "deadline-worker" in warnings[0]


def test_deny_through_a_group_against_allow_through_another():
    rights = report(group_rights={"S-1-5-32-544": ["SeNetworkLogonRight"], "S-1-5-32-545": ["SeDenyNetworkLogonRight"]})
    warnings = deny_warnings(rights)
    assert len(warnings) == 1
    assert "SeNetworkLogonRight (via Administrators)" in warnings[0]
    assert "SeDenyNetworkLogonRight (via Users)" in warnings[0]


@pytest.mark.parametrize(("deny", "allow"), list(DENY_OVERRIDES.items()))
def test_every_pair_is_checked(deny, allow):
    assert len(deny_warnings(report(rights=[allow, deny], group_rights={}))) == 1
    assert deny_warnings(report(rights=[deny], group_rights={})) == []  # nothing to override
    assert deny_warnings(report(rights=[allow], group_rights={})) == []
