# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""deadline_cloud.cmf.worker_agent_service: restart, start or stop the agent and prove it came back."""

from __future__ import annotations

from typing import ClassVar

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils import agent_rules
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.action import CmfAction
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.host import Host, HostOperationError

ARGUMENT_SPEC = {
    "service": {"type": "str", "default": agent_rules.DEFAULT_SERVICE, "aliases": ["name"]},
    "state": {"type": "str", "default": "restarted", "choices": ["restarted", "started", "stopped"]},
    "timeout": {"type": "int", "default": 300},
    "settle": {"type": "int", "default": 15},
}


def _would(params: dict, service: dict) -> dict:
    """What the call would do, from a reading of the service (check mode)."""
    running = service.get("state") == "running"
    wanted = params["state"]
    changed = wanted == "restarted" or (wanted == "started") != running
    return {
        "changed": changed,
        "state": "stopped" if wanted == "stopped" else "running",
        "restarted": wanted == "restarted",
        "healthy": None,
        "pid": service.get("pid") if not changed else None,
        "log_tail": [],
    }


def failure_message(name: str, outcome: dict, info: dict | None) -> str:
    """Why the service is not healthy, in the agent's terms, with the last lines of its log."""
    parts = [f"{name} did not stay running after the {'restart' if outcome.get('restarted') else 'start'}"]
    if outcome.get("error"):
        parts.append(f"the agent stopped with: {outcome['error']}")
    if info is not None:
        blockers = [f"{f['id']}: {f['message']}" for f in info["findings"] if f["severity"] == "blocker"]
        if blockers:
            parts.append("worker_agent_info finds " + " | ".join(blockers))
    tail = outcome.get("log_tail") or []
    if tail:
        parts.append("last lines of worker-agent.log:\n" + "\n".join(tail))
    else:
        parts.append("worker-agent.log has no new lines (a configuration error stops the agent before it logs)")
    return ". ".join(parts)


class ActionModule(CmfAction):
    ARGUMENT_SPEC: ClassVar[dict] = ARGUMENT_SPEC

    def execute(self, host: Host, params: dict, task_vars: dict) -> dict:
        name = params["service"]
        if self.check_mode:
            info = agent_rules.read_agent_info(host, name)
            if not info["service"]["exists"]:
                return {"failed": True, "msg": f"the service {name} does not exist", "changed": False}
            result = _would(params, info["service"])
            if params["state"] != "stopped" and result["changed"] and not info["startup"]["starts"]:
                result["warnings"] = [f"{name} would not stay running: {info['startup']['error']}"]
            return result
        outcome = host.call(
            "control_service", name=name, state=params["state"], timeout=params["timeout"], settle=params["settle"]
        )
        result = {
            "changed": bool(outcome.get("changed")),
            "state": outcome.get("state"),
            "restarted": bool(outcome.get("restarted")),
            "healthy": bool(outcome.get("healthy")),
            "pid": outcome.get("pid"),
            "log_tail": list(outcome.get("log_tail") or []),
        }
        if result["healthy"]:
            return result
        info = None
        try:
            info = agent_rules.read_agent_info(host, name)
        except HostOperationError as error:
            result["info_error"] = error.message
        if info is not None:
            result["findings"] = info["findings"]
        result.update(failed=True, msg=failure_message(name, outcome, info))
        return result
