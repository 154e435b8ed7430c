# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from typing import ClassVar

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._action import AccountChangeAction
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.user_rights import (
    ABSENT,
    PRESENT,
    canonical_rights,
    deny_warnings,
    plan_rights,
    policy_gap_text,
    policy_gaps,
)


class ActionModule(AccountChangeAction):
    ARGUMENT_SPEC: ClassVar[dict] = {
        "account": {"type": "str", "required": True},
        "rights": {"type": "list", "elements": "str", "required": True},
        "state": {"type": "str", "default": PRESENT, "choices": [PRESENT, ABSENT]},
        "reading": {"type": "dict"},
    }
    CHANGE_OPERATION = "set_user_rights"
    ITEMS = "rights"
    DIFF_TITLE = "direct rights"

    def requested(self, params: dict) -> list:
        return canonical_rights(params["rights"])  # UnknownRightError lists the valid ones

    def plan(self, report: dict, requested: list, state: str):
        return plan_rights(report["rights"], requested, state)

    def extra_results(self, report: dict) -> dict:
        warnings = deny_warnings(report)
        # A right a domain policy defines is reset to the policy's holders at the next refresh.
        who = f"{report.get('name')} ({report.get('sid')})"
        warnings += [policy_gap_text(gap, who) for gap in policy_gaps(report, report.get("rights") or [])]
        return {"warnings": warnings} if warnings else {}
