# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the role deadline_worker_agent_user; the logic is in plugin_utils._role."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils import _role as role


def _plain(value: Any) -> Any:
    """Ansible's tagged values as plain ones, so the checks see the types the operator wrote."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def worker_role_variables(variables: Any) -> bool:
    if not isinstance(variables, Mapping):
        raise AnsibleFilterError(f"worker_role_variables expects a dictionary, got {type(variables).__name__}")
    try:
        role.check_variables(_plain(variables))
    except role.RoleVariableError as error:
        raise AnsibleFilterError(f"the role deadline_cloud.cmf.deadline_worker_agent_user cannot run: {error}") from None
    return True


def worker_role_plan(reading: Any, variables: Any) -> dict:
    if not isinstance(reading, Mapping) or not isinstance(variables, Mapping):
        raise AnsibleFilterError("worker_role_plan expects a worker_agent_info result and the role's variables")
    try:
        return role.plan(_plain(reading), _plain(variables))
    except role.RoleVariableError as error:
        raise AnsibleFilterError(f"the role deadline_cloud.cmf.deadline_worker_agent_user cannot run: {error}") from None


def worker_role_outcome(reading: Any, plan: Any, **results: Any) -> dict:
    return role.outcome(_plain(reading or {}), _plain(plan or {}), **{k: _plain(v) for k, v in results.items()})


def worker_role_failure_message(result: Any) -> str:
    return role.failure_message(result if isinstance(result, Mapping) else {})


def worker_role_should_fail(result: Any) -> bool:
    return role.should_fail(result if isinstance(result, Mapping) else {"status": "failed"})


class FilterModule:
    def filters(self) -> dict:
        return {
            "worker_role_variables": worker_role_variables,
            "worker_role_plan": worker_role_plan,
            "worker_role_outcome": worker_role_outcome,
            "worker_role_failure_message": worker_role_failure_message,
            "worker_role_should_fail": worker_role_should_fail,
        }
