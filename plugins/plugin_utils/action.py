# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every action plugin of the collection shares: argument checks, the host, failures."""

from __future__ import annotations

from typing import Any, ClassVar

from ansible.plugins.action import ActionBase

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.host import Host, HostOperationError, host_for


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
            result.update(failed=True, changed=False, msg=error.message, error_code=error.code)
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
