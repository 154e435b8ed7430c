# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every action plugin of the collection shares: argument checks, the host, failures.

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ansible.plugins.action import ActionBase

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent.config_file import TomlParserMissing
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host import Host, HostOperationError, host_for, reading_of


class CmfAction(ActionBase):
    """Base of the collection's modules, which run on the controller and reach the host through a Host.

    Subclasses set ARGUMENT_SPEC (and the usual constraints) and implement :meth:`execute`.
    """

    ARGUMENT_SPEC: ClassVar[dict] = {}
    MUTUALLY_EXCLUSIVE: ClassVar[list] = []
    REQUIRED_ONE_OF: ClassVar[list] = []
    REQUIRED_TOGETHER: ClassVar[list] = []
    REQUIRED_IF: ClassVar[list] = []

    _requires_connection = True
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp: Any = None, task_vars: dict | None = None) -> dict:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _validation, params = self.validate_argument_spec(
            argument_spec=self.ARGUMENT_SPEC,
            mutually_exclusive=self.MUTUALLY_EXCLUSIVE,
            required_one_of=self.REQUIRED_ONE_OF,
            required_together=self.REQUIRED_TOGETHER,
            required_if=self.REQUIRED_IF,
        )
        host = host_for(self, task_vars)
        try:
            result.update(self.execute(host, params, task_vars))
        except HostOperationError as error:
            # A host that failed half-way says what it changed; it is reported, never hidden.
            result.update(error.details, failed=True, changed=error.changed, msg=error.message, error_code=error.code)
        except TomlParserMissing as error:
            result.update(failed=True, changed=False, msg=str(error))
        result.setdefault("changed", False)
        return result

    @property
    def check_mode(self) -> bool:
        return bool(self._task.check_mode)

    @property
    def diff_mode(self) -> bool:
        return bool(self._task.diff)

    def execute(self, host: Host, params: dict, task_vars: dict) -> dict:
        raise NotImplementedError


class AccountChangeAction(CmfAction):
    """win_user_rights and win_group_member: one account, a list of things it should (not) have.

    In check mode the plan comes from one read of the account (``read_account``); otherwise one
    call of CHANGE_OPERATION, in which the host applies the difference itself and reports what it
    did, so nothing can change between a read and a write. Subclasses say what the list is.
    """

    CHANGE_OPERATION: ClassVar[str]  # set_user_rights | set_group_membership
    ITEMS: ClassVar[str]  # the parameter, and the key of the account report: rights | groups
    DIFF_TITLE: ClassVar[str]

    def requested(self, params: dict) -> list:
        """The items asked for, checked and normalized; ValueError says what is wrong."""
        raise NotImplementedError

    def plan(self, report: dict, requested: list, state: str) -> Any:
        """``added``, ``removed``, ``before`` and ``after`` for this report; AccountError to refuse."""
        raise NotImplementedError

    def diff_line(self, item: Any) -> str:
        return f"{item}\n"

    def extra_results(self, report: dict) -> dict:
        return {}

    def predicted_report(self, report: dict, planned: Any) -> dict:
        """The report as the host would give it after ``planned`` (check mode, or nothing to change)."""
        return {**report, self.ITEMS: list(planned.after)}

    def after_change_problem(self, report: dict, removed: list) -> str | None:
        """What the host's report after the change contradicts (it still holds something removed); None when nothing."""
        return None

    def items_of(self, report: dict) -> list:
        """The report's items as the module returns them."""
        return list(report[self.ITEMS])

    def execute(self, host: Host, params: dict, task_vars: dict) -> dict:
        from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.accounts import AccountError
        from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.user_rights import effective_rights

        account, state = params["account"], params["state"]
        try:
            requested = self.requested(params)
        except ValueError as error:
            return {"failed": True, "msg": f"account {account}: {error}; nothing was changed"}

        given = _account_in_reading(params.get("reading"), account)
        planned = None
        if self.check_mode or given is not None:
            before_report = given if given is not None else host.call("read_account", account=account)
            try:
                planned = self.plan(before_report, requested, state)
            except AccountError as error:
                return {"failed": True, "msg": error.message, "error_code": error.code}
        if planned is not None and (self.check_mode or not planned.changed):
            # What a reading shows in place costs no call; check mode reports the plan.
            added, removed, before = planned.added, planned.removed, planned.before
            report = self.predicted_report(before_report, planned)
        else:
            done = host.call(self.CHANGE_OPERATION, account=account, state=state, **{self.ITEMS: requested})
            added, removed, before, report = done["added"], done["removed"], done["before"], done["report"]

        result: dict = {
            "changed": bool(added or removed),
            "sid": report["sid"],
            "account": report["name"],
            "added": added,
            "removed": removed,
            self.ITEMS: self.items_of(report),
            "effective_rights": effective_rights(report),
            **self.extra_results(report),
        }
        problem = self.after_change_problem(report, removed)
        if problem:
            result.update(failed=True, msg=problem)
        if self.diff_mode:
            header = f"{report['name']} {self.DIFF_TITLE}"
            result["diff"] = {
                "before_header": header,
                "after_header": header,
                "before": "".join(self.diff_line(item) for item in before),
                "after": "".join(self.diff_line(item) for item in self.items_of(report)),
            }
        return result


def _account_in_reading(value: Any, account: str) -> dict | None:
    """The account report inside a reading (worker_agent_info's), when it is of ``account`` (its
    SID, or the name the report carries); None otherwise, and the module reads the host itself."""
    from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.accounts import is_sid, normalize_sid, same_account

    report = (reading_of(value) or {}).get("account")
    if not isinstance(report, dict) or not report.get("sid"):
        return None
    if is_sid(account):
        return report if normalize_sid(account) == normalize_sid(str(report["sid"])) else None
    name, domain, hostname = (str(report.get(k) or "") for k in ("name", "domain", "hostname"))
    return report if same_account(account, name, domain, hostname) else None
