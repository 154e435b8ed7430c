# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The agent and its service on the simulated worker, as read_agent_info.ps1 and control_service.ps1
do them. A start is decided by agent_rules' startup verdict on what is on disk (STATE.md).

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

import base64

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils import agent_rules
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.host._errors import HostOperationError
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.host._simulated import utc_now
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.host._simulated_accounts import account_report

SERVICE_NOT_FOUND = "SERVICE_NOT_FOUND"
LOG_TAIL_LINES = 20
# Where the simulated agent is installed unless the state says otherwise (agent.location / agent.python).
DEFAULT_PYTHON = r"C:\Program Files\Python311\python.exe"
DEFAULT_LOCATION = r"C:\Program Files\Python311\Lib\site-packages\deadline_worker_agent"
FIRST_PID = 4100
# A running service whose state file gives no start time has run since before anything the
# simulator wrote (files it writes get a `modified` time; hand-written ones have none).
STARTED_BEFORE_ANY_WRITE = "2000-01-01T00:00:00.000000+00:00"


def _service(state, name: str) -> tuple[str, dict] | None:
    for key, entry in (state.data.get("services") or {}).items():
        if str(key).casefold() == name.casefold() and isinstance(entry, dict):
            return str(key), entry
    return None


def _machine_environment(state) -> dict[str, str]:
    return {str(k): str(v) for k, v in (state.data.get("environment") or {}).items() if agent_rules.is_agent_variable(str(k))}


def read_agent_info(state, parameters: dict) -> dict:
    service_name = parameters["service"]
    found = _service(state, service_name)
    agent = state.data.get("agent") or {}
    version = agent.get("version")
    service: dict = {"name": service_name, "exists": found is not None}
    if found is not None:
        key, entry = found
        service.update(
            name=key,
            state=entry.get("state", "stopped"),
            start_mode=entry.get("start_mode", "auto"),
            account=entry.get("account"),
            environment=[str(e) for e in entry.get("environment") or []],
            pid=entry.get("pid") if entry.get("state") == "running" else None,
            started_at=(entry.get("started_at") or STARTED_BEFORE_ANY_WRITE) if entry.get("state") == "running" else None,
        )
    account_name = parameters["account"] or service.get("account")
    account = None
    account_error = None
    if account_name:
        try:
            account = account_report(state, account_name)
        except HostOperationError as error:
            account_error = {"code": error.code, "message": error.message}
    data = state.read_bytes(parameters["config_path"])
    return {
        "agent": {
            "version": None if version is None else str(version),
            "location": agent.get("location", DEFAULT_LOCATION) if version is not None else None,
            "python": agent.get("python", DEFAULT_PYTHON) if version is not None else None,
            "error": None if version is not None else "deadline_worker_agent is not installed",
        },
        "service": service,
        "machine_environment": _machine_environment(state),
        "account": account,
        "account_error": account_error,
        "config": {
            "path": parameters["config_path"],
            "exists": data is not None,
            "content": base64.b64encode(data or b"").decode("ascii"),
            "modified_at": state.modified_at(parameters["config_path"]),
        },
    }


def _log_tail(state) -> list[str]:
    data = state.read_bytes(agent_rules.LOG_PATH) or b""
    return data.decode("utf-8", errors="replace").splitlines()[-LOG_TAIL_LINES:]


def _append_log(state, lines: list[str]) -> None:
    current = state.read_bytes(agent_rules.LOG_PATH) or b""
    state.write_bytes(agent_rules.LOG_PATH, current + "".join(f"{line}\r\n" for line in lines).encode("utf-8"))


def _start(state, key: str, entry: dict) -> None:
    """What the agent does when its service starts: stop at a configuration error, else run."""
    raw = read_agent_info(state, {"service": key, "config_path": agent_rules.CONFIG_PATH, "account": ""})
    verdict = agent_rules.read_host(raw).verdict
    if not verdict.starts:
        # The agent exits before it configures logging: its log gets nothing (domain notes 1.3).
        entry.update(state="stopped", last_error=verdict.error, pid=None)
        return
    pid = int(state.data.get("next_pid") or FIRST_PID)
    state.data["next_pid"] = pid + 4
    entry.update(state="running", pid=pid, started_at=utc_now())
    entry.pop("last_error", None)
    agent = state.data.get("agent") or {}
    _append_log(
        state,
        [
            "[INFO] 👋 Worker Agent starting",
            f"[INFO] AgentInfo Agent Version: {agent.get('version')} Installed at:"
            f" {agent.get('location', DEFAULT_LOCATION)} Running as user: {entry.get('account')}",
        ],
    )


def control_service(state, parameters: dict) -> dict:
    name, wanted = parameters["name"], parameters["state"]
    found = _service(state, name)
    if found is None:
        raise HostOperationError(SERVICE_NOT_FOUND, f"the service {name} does not exist on {state.hostname}")
    key, entry = found
    was_running = entry.get("state") == "running"
    before_pid = entry.get("pid") if was_running else None
    restarted = False
    changed = False
    if wanted == "stopped":
        if was_running:
            entry.update(state="stopped", pid=None)
            changed = True
    elif wanted == "started":
        if not was_running:
            _start(state, key, entry)
            changed = True
    elif wanted == "restarted":
        entry["restarts"] = int(entry.get("restarts") or 0) + 1
        entry.update(state="stopped", pid=None)
        _start(state, key, entry)
        restarted = changed = True
    else:
        raise HostOperationError("INVALID_STATE", f"state must be restarted, started or stopped, not {wanted!r}")
    running = entry.get("state") == "running"
    pid = entry.get("pid") if running else None
    healthy = running if wanted != "stopped" else not running
    return {
        "changed": changed,
        "state": "running" if running else "stopped",
        "restarted": restarted,
        "healthy": healthy,
        "pid": pid,
        "previous_pid": before_pid,
        "error": None if running else entry.get("last_error"),
        "log_tail": _log_tail(state),
    }


OPERATIONS = {"read_agent_info": read_agent_info, "control_service": control_service}
