# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from typing import ClassVar

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.accounts import AccountError
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.action import CmfAction
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.group_membership import (
    ABSENT,
    PRESENT,
    apply_membership_plan,
    plan_membership,
)
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.host import Host
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.user_rights import effective_rights


class ActionModule(CmfAction):
    ARGUMENT_SPEC: ClassVar[dict] = {
        "account": {"type": "str", "required": True},
        "groups": {"type": "list", "elements": "str", "required": True},
        "state": {"type": "str", "default": PRESENT, "choices": [PRESENT, ABSENT]},
    }

    def execute(self, host: Host, params: dict, task_vars: dict) -> dict:
        account, groups, state = params["account"], [str(g) for g in params["groups"]], params["state"]
        if not groups or any(not g.strip() for g in groups):
            return {"failed": True, "msg": f"account {account}: groups must name at least one group, and no empty one"}

        if self.check_mode:
            # Plan from one read, with the same safety rules the host applies.
            before_report = host.call("read_account", account=account)
            try:
                plan = plan_membership(before_report, groups, state)
            except AccountError as error:
                return {"failed": True, "msg": error.message, "error_code": error.code}
            added, removed, before = plan.added, plan.removed, plan.before
            report = apply_membership_plan(before_report, plan)
        else:
            done = host.call("set_group_membership", account=account, groups=groups, state=state)
            added, removed, before, report = done["added"], done["removed"], done["before"], done["report"]

        result: dict = {
            "changed": bool(added or removed),
            "sid": report["sid"],
            "account": report["name"],
            "added": added,
            "removed": removed,
            "groups": report["groups"],
            "effective_rights": effective_rights(report),
        }
        if self.diff_mode:
            result["diff"] = {
                "before_header": f"{report['name']} local groups",
                "after_header": f"{report['name']} local groups",
                "before": "".join(f"{g['name']} ({g['sid']})\n" for g in before),
                "after": "".join(f"{g['name']} ({g['sid']})\n" for g in report["groups"]),
            }
        return result
