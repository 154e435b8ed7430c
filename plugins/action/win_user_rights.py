# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from typing import ClassVar

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.action import CmfAction
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.host import Host
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.user_rights import (
    ABSENT,
    PRESENT,
    UnknownRightError,
    apply_rights_plan,
    canonical_rights,
    deny_warnings,
    effective_rights,
    plan_rights,
)


class ActionModule(CmfAction):
    ARGUMENT_SPEC: ClassVar[dict] = {
        "account": {"type": "str", "required": True},
        "rights": {"type": "list", "elements": "str", "required": True},
        "state": {"type": "str", "default": PRESENT, "choices": [PRESENT, ABSENT]},
    }

    def execute(self, host: Host, params: dict, task_vars: dict) -> dict:
        account, state = params["account"], params["state"]
        try:
            rights = canonical_rights(params["rights"])
        except UnknownRightError as error:
            return {"failed": True, "msg": f"account {account}: {error}; nothing was changed"}

        if self.check_mode:
            # Plan from one read; the operation that changes the host never runs in check mode.
            before_report = host.call("read_account", account=account)
            plan = plan_rights(before_report["rights"], rights, state)
            added, removed, before = plan.added, plan.removed, plan.before
            report = apply_rights_plan(before_report, plan)
        else:
            done = host.call("set_user_rights", account=account, rights=rights, state=state)
            added, removed, before, report = done["added"], done["removed"], done["before"], done["report"]

        result: dict = {
            "changed": bool(added or removed),
            "sid": report["sid"],
            "account": report["name"],
            "added": added,
            "removed": removed,
            "rights": report["rights"],
            "effective_rights": effective_rights(report),
        }
        warnings = deny_warnings(report)
        if warnings:
            result["warnings"] = warnings
        if self.diff_mode:
            result["diff"] = {
                "before_header": f"{report['name']} direct rights",
                "after_header": f"{report['name']} direct rights",
                "before": "".join(f"{right}\n" for right in before),
                "after": "".join(f"{right}\n" for right in report["rights"]),
            }
        return result
