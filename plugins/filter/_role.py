# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Internal filters of the role deadline_worker_agent_user: its decisions, in plugin_utils._role.

Internal to this collection: not a public API. The role's tasks use them; their names, arguments and
results may change in any release, without notice or deprecation. Use the role, or its fact
deadline_worker_agent_user_result, instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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


def _variable_error(variables: Any) -> str:
    if not isinstance(variables, Mapping):
        return f"the role's variables must be a dictionary, not {type(variables).__name__}"
    try:
        role.check_variables(_plain(variables))
    except role.RoleVariableError as error:
        return str(error)
    return ""


def worker_role_variables(variables: Any) -> bool:
    """True when the role can run with these variables; the plan names what is wrong otherwise."""
    return not _variable_error(variables)


def worker_role_plan(before: Any, variables: Any, check_mode: bool = False) -> dict:
    """The planned outcome (the fact deadline_worker_agent_user_result before any change), or a failed
    one that names the variable the role cannot run with (no remote call was made then)."""
    before = _plain(before) if isinstance(before, Mapping) else {}
    problem = _variable_error(variables)
    if problem:
        return role.outcome({}, {"refused": [], "act": False, "restart": False}, error=problem, check_mode=bool(check_mode), stage="planned")
    return role.outcome(before, role.plan(before, _plain(variables)), check_mode=bool(check_mode), stage="planned")


def worker_role_outcome(before: Any, plan: Any, **results: Any) -> dict:
    return role.outcome(_plain(before or {}), _plain(plan or {}), **{k: _plain(v) for k, v in results.items()})


class FilterModule:
    def filters(self) -> dict:
        return {
            "_worker_role_variables": worker_role_variables,
            "_worker_role_plan": worker_role_plan,
            "_worker_role_outcome": worker_role_outcome,
        }
