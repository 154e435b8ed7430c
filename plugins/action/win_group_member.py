# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from typing import ClassVar

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._action import AccountChangeAction
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.groups import (
    ABSENT,
    PRESENT,
    plan_membership,
    report_with_groups,
    sorted_groups,
)


class ActionModule(AccountChangeAction):
    ARGUMENT_SPEC: ClassVar[dict] = {
        "account": {"type": "str", "required": True},
        "groups": {"type": "list", "elements": "str", "required": True},
        "state": {"type": "str", "default": PRESENT, "choices": [PRESENT, ABSENT]},
        "reading": {"type": "dict"},
    }
    CHANGE_OPERATION = "set_group_membership"
    ITEMS = "groups"
    DIFF_TITLE = "local groups"

    def requested(self, params: dict) -> list:
        groups = [str(group) for group in params["groups"]]
        if not groups or any(not group.strip() for group in groups):
            raise ValueError("groups must name at least one group, and no empty one")
        return groups

    def plan(self, report: dict, requested: list, state: str):
        return plan_membership(report, requested, state)  # AccountError: a missing group, a refused removal

    def predicted_report(self, report: dict, planned) -> dict:
        return report_with_groups(report, planned.after)  # a group left takes its rights with it

    def items_of(self, report: dict) -> list:
        # {name, sid} as documented, the same in check mode (a plan) and after a change (a report).
        return sorted_groups(report["groups"])

    def after_change_problem(self, report: dict, removed: list) -> str | None:
        # A domain group nested in the local group keeps the account a member after its direct membership
        # is gone; the report read before cannot show that (NetUserGetLocalGroups cannot say "both").
        still = [g for g in removed if g["sid"] in {held["sid"] for held in report.get("groups") or []}]
        if not still:
            return None
        names = ", ".join(f"{g['name']} ({g['sid']})" for g in still)
        return (
            f"{report['name']} lost its direct membership of {names} but is still a member through a group nested in it"
            " (a domain group): remove it from that group, or that group from the local one"
        )

    def diff_line(self, item: dict) -> str:
        return f"{item['name']} ({item['sid']})\n"
