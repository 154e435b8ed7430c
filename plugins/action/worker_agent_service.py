# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""deadline_cloud.cmf.worker_agent_service: restart, start or stop the agent and prove it came back.

Waiting for a busy agent to become idle happens here, on the controller, one short remote call
per poll interval: a wait inside one remote call would hold the WinRM or SSM connection open for
up to an hour (and hit its timeouts); a wait here holds only this task's fork. Each poll is the
control_service call itself (``if_idle``): the host checks for sessions at the moment it would
stop the service, so an idle agent costs one call and no render starts between a check and a stop.

For the same reason ``async`` does not start a job on the host: the task's async seconds bound the
whole task (waits included), its ``poll`` is the interval between two looks at a busy agent, and the
result comes back when the task ends, as Ansible's own polling would have returned it. ``poll: 0``
(fire and forget) is refused: nobody would be left to verify the restart.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from ansible.utils.display import Display

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._action import CmfAction
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import config_file as agent_config
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import deadline_api
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import rules as agent_rules
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import settings as agent_settings
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host import Host, HostOperationError, reading_of
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._role import INTERRUPT_STOP_TIMEOUT

ARGUMENT_SPEC = {
    "service": {"type": "str", "default": agent_rules.DEFAULT_SERVICE, "aliases": ["name"]},
    "state": {"type": "str", "default": "restarted", "choices": ["restarted", "started", "stopped"]},
    "timeout": {"type": "int", "default": 300},
    "settle": {"type": "int", "default": 15},
    "idle_timeout": {"type": "int", "default": 0},
    "poll_interval": {"type": "int"},
    "when_busy": {"type": "str", "default": "fail", "choices": ["skip", "interrupt", "fail"]},
    "config_path": {"type": "str"},
    "account": {"type": "str"},
    "ask_service": {"type": "bool", "default": False},
    "reading": {"type": "dict"},
}


def _service_ids(reading: dict | None) -> dict:
    """The farm, fleet and worker ids and the region that the Deadline Cloud API needs, from a
    reading of the host (worker.toml's [worker] and [aws], worker.json, the service's Environment)."""
    raw = reading_of(reading)
    if not raw:
        return {}
    entries = (agent_rules.describe(raw).get("config") or {}).get("entries") or {}
    environment = agent_settings.service_environment(raw.get("machine_environment"), (raw.get("service") or {}).get("environment"))
    region = (entries.get("aws") or {}).get("region") or getattr(environment.get("AWS_DEFAULT_REGION"), "value", None)
    return {
        "farm_id": (entries.get("worker") or {}).get("farm_id"),
        "fleet_id": (entries.get("worker") or {}).get("fleet_id"),
        "worker_id": (raw.get("sessions") or {}).get("worker_id"),
        "region": region,
    }


DEFAULT_POLL_INTERVAL = 30

display = Display()


def waiting_message(host: str, service: str, sessions: dict, seconds_left: float, poll_interval: int) -> str:
    """The line shown at each look at a busy agent, at any verbosity: a wait of up to idle_timeout
    seconds must not look like a hung run."""
    count = int(sessions.get("count") or 1)
    ids = [str(i) for i in sessions.get("ids") or []]
    return (
        f"{host}: {service} runs {count} session(s)" + (f" ({', '.join(ids)})" if ids else "")
        + f"; waiting for them to end before the restart, {max(0, round(seconds_left))} s left, next look in {poll_interval} s"
    )


def busy_notice(service: str, sessions: dict, params: dict) -> str:
    """What a stop would do about the sessions a busy agent runs now (check mode's warning)."""
    count = int(sessions.get("count") or 1)
    verb = "restart" if params["state"] == "restarted" else "stop"
    then = {
        "fail": "fail, stopping nothing",
        "skip": "leave the service running (restart pending)" if verb == "restart" else "leave the service running",
        "interrupt": "interrupt them (a normal stop; the service reschedules them)",
    }[params["when_busy"]]
    within = f" unless they end within {params['idle_timeout']} s" if params["idle_timeout"] else ""
    return f"{service} runs {count} session(s) now: the {verb} would {then}{within} (when_busy: {params['when_busy']})"


_LEAST = {"timeout": 1, "settle": 0, "idle_timeout": 0, "poll_interval": 1}


def worst_case_seconds(params: dict) -> int:
    """The longest the stop, the start and the settle may take once the wait for idle is over."""
    stop = max(params["timeout"], INTERRUPT_STOP_TIMEOUT) if params["when_busy"] == "interrupt" else params["timeout"]
    stops = params["state"] in ("restarted", "stopped")
    starts = params["state"] in ("restarted", "started")
    return (stop if stops else 0) + (params["timeout"] + params["settle"] if starts else 0)


def async_refusal(async_seconds: int, poll: int, params: dict) -> str | None:
    """Why this task cannot run under ``async: async_seconds`` / ``poll: poll``, before any call; None when it can."""
    if poll <= 0:
        return (
            f"worker_agent_service cannot run with async and poll: 0: it waits for idle and verifies the restart on the "
            f"controller, so a task that is not waited for would leave {params['service']} stopped or unverified; "
            "give poll a number of seconds (the interval between two looks at a busy agent)"
        )
    needed = worst_case_seconds(params)
    if async_seconds < needed:
        return (
            f"async: {async_seconds} leaves no time for the {params['state'].removesuffix('ed')} itself, which may take up to "
            f"{needed} s (timeout {params['timeout']}, settle {params['settle']}, when_busy {params['when_busy']}); "
            "raise async or lower timeout; nothing was changed"
        )
    return None


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
        "events": [],
    }


def failure_message(name: str, outcome: dict, info: dict | None) -> str:
    """Why the service is not healthy, in the agent's terms, with what the host logged since the stop."""
    verb = {"stopped": "stop", "started": "start"}.get(str(outcome.get("_state")), "restart")
    parts = [f"{name} did not stay running after the {verb}" if verb != "stop" else f"{name} did not stop"]
    if outcome.get("win32_error"):
        parts.append(f"the Service Control Manager refused it: {outcome.get('error')} (Win32 error {outcome['win32_error']})")
    elif outcome.get("error"):
        parts.append(f"the agent stopped with: {outcome['error']}")
    if info is not None:
        blockers = [f"{f['id']}: {f['message']}" for f in info["findings"] if f["severity"] == "blocker"]
        if blockers:
            parts.append("worker_agent_info finds " + " | ".join(blockers))
    events = outcome.get("events") or []
    if events:
        parts.append("System event log: " + " | ".join(f"{e.get('id')}: {e.get('message')}" for e in events))
    tail = outcome.get("log_tail") or []
    if tail:
        parts.append("worker-agent.log since the stop:\n" + "\n".join(tail))
    elif outcome.get("win32_error"):
        parts.append("worker-agent.log has no new lines: the agent never ran")
    else:
        parts.append("worker-agent.log has no new lines (a configuration error stops the agent before it logs)")
    return ". ".join(parts)


class ActionModule(CmfAction):
    ARGUMENT_SPEC: ClassVar[dict] = ARGUMENT_SPEC
    _supports_async = True

    def run(self, tmp: Any = None, task_vars: dict | None = None) -> dict:
        try:
            return super().run(tmp, task_vars)
        finally:
            # The task ends here, its waits done on the controller: no job on the host is left to poll.
            # ansible-core offers an action plugin no supported way to say so: its TaskExecutor polls
            # (async_status, a remote call) whenever this task's async_val is above 0 once run() returns,
            # and reads it from this task object, this host's own copy (ansible.builtin.gather_facts sets
            # it as well). An assumption on core's internals, then, held on each supported core (2.16 to
            # 2.21) by the async tests of tests/integration/test_worker_agent_service.py, which
            # tests/quality/test_cores.py runs with each core's ansible-playbook (bash tests/run.sh --all-cores).
            self._task.async_val = 0

    def _control(self, host: Host, params: dict, *, if_idle: bool, timeout: int) -> dict:
        return host.call(
            "control_service",
            name=params["service"],
            state=params["state"],
            timeout=timeout,
            settle=params["settle"],
            if_idle=if_idle,
            config_path=params["config_path"] or "",
            account=params["account"] or "",
        )

    def execute(self, host: Host, params: dict, task_vars: dict) -> dict:
        name = params["service"]
        bad = [
            f"{option} must be at least {least} (got {params[option]})"
            for option, least in _LEAST.items()
            if params[option] is not None and params[option] < least
        ]
        if bad:
            return {"failed": True, "changed": False, "msg": "; ".join(bad) + "; nothing was changed"}
        async_seconds, poll = int(self._task.async_val or 0), int(self._task.poll or 0)
        if async_seconds:
            refusal = async_refusal(async_seconds, poll, params)
            if refusal:
                return {"failed": True, "changed": False, "msg": refusal}
        poll_interval = params["poll_interval"] or (poll if async_seconds else DEFAULT_POLL_INTERVAL)
        if self.check_mode:
            info = agent_rules.read_agent_info(host, name, params["config_path"] or agent_config.CONFIG_PATH, params["account"])
            if not info["service"]["exists"]:
                return {"failed": True, "msg": f"the service {name} does not exist", "changed": False}
            result = _would(params, info["service"])
            result["busy"] = info["sessions"]["busy"]
            warnings = []
            if params["state"] != "started" and result["changed"] and result["busy"]:
                warnings.append(busy_notice(name, info["sessions"], params))
            if params["state"] != "stopped" and result["changed"] and not info["startup"]["starts"]:
                warnings.append(f"{name} would not stay running: {info['startup']['error']}")
            if warnings:
                result["warnings"] = warnings
            return result

        # A stop interrupts every session the agent runs (DESIGN: never unless the operator chose to): every
        # stop looks at the agent first, in the same call; idle_timeout 0 looks once and does not wait.
        stops = params["state"] in ("restarted", "stopped")
        waits = stops
        began = time.monotonic()
        deadline = began + params["idle_timeout"]
        if async_seconds:
            # The wait for idle ends early enough for the restart itself to end within async.
            deadline = min(deadline, began + async_seconds - worst_case_seconds(params))
        polls = 0
        # Busy, as the service shows it: where the controller can ask the Deadline Cloud API, a
        # worker it sees busy is not stopped even when the host sees no process (busy wins).
        view, connection, ids = None, None, {}
        if waits and params["ask_service"]:
            ids = _service_ids(params["reading"])
            unknown = deadline_api.unknown_ids(ids.get("farm_id"), ids.get("fleet_id"), ids.get("worker_id"))
            # Without the ids no client could help: boto3 is not even imported (its import costs about 0.1 s of CPU per host).
            view = deadline_api.not_checked(unknown) if unknown else None
            connection = None if unknown else deadline_api.connect(ids.get("region"))
        while True:
            if connection is not None:
                view = deadline_api.ask(connection, ids.get("farm_id"), ids.get("fleet_id"), ids.get("worker_id"))
            if view is not None and view.checked and view.busy:
                outcome = {"busy": True, "sessions": {"busy": True, "count": len(view.active_sessions) or 1, "ids": view.active_sessions}}
            else:
                outcome = self._control(host, params, if_idle=waits, timeout=params["timeout"])
                polls += 1
            if not outcome.get("busy"):
                break
            if time.monotonic() + poll_interval > deadline:
                sessions = outcome.get("sessions") or {}
                count = int(sessions.get("count") or 1)
                if params["when_busy"] == "skip":
                    return {
                        "service_view": view.as_dict() if view is not None else None,
                        "changed": False,
                        "restarted": False,
                        "restart_pending": True,
                        "busy": True,
                        "sessions": sessions,
                        "polls": polls,
                        "state": outcome.get("state"),
                        "pid": outcome.get("pid"),
                        "msg": f"{name} runs {count} session(s): {'restart' if params['state'] == 'restarted' else 'stop'} pending, nothing was stopped",
                    }
                if params["when_busy"] == "fail":
                    return {
                        "failed": True,
                        "changed": False,
                        "busy": True,
                        "sessions": sessions,
                        "polls": polls,
                        "msg": f"{name} still runs {count} session(s) after {round(time.monotonic() - began)} s: nothing was stopped",
                    }
                # interrupt: a normal stop (never a kill), long enough for the agent's own cancelation
                outcome = self._control(host, params, if_idle=False, timeout=max(params["timeout"], INTERRUPT_STOP_TIMEOUT))
                polls += 1
                break
            display.display(
                waiting_message(str(task_vars.get("inventory_hostname") or ""), name, outcome.get("sessions") or {}, deadline - time.monotonic(), poll_interval)
            )
            time.sleep(poll_interval)

        result = {
            "changed": bool(outcome.get("changed")),
            "state": outcome.get("state"),
            "restarted": bool(outcome.get("restarted")),
            "healthy": bool(outcome.get("healthy")),
            "pid": outcome.get("pid"),
            "busy": False,
            "restart_pending": False,
            "sessions": outcome.get("sessions") or {},
            "interrupted": int(outcome.get("interrupted") or 0),
            "polls": polls,
            "service_view": view.as_dict() if view is not None else None,
            "win32_error": outcome.get("win32_error"),
            "log_tail": list(outcome.get("log_tail") or []),
            "events": list(outcome.get("events") or []),
        }
        info = agent_rules.result_of(outcome["reading"]) if outcome.get("reading") else None
        if info is not None:
            result["info"] = info
        if result["healthy"]:
            return result
        if info is None:
            try:
                info = agent_rules.read_agent_info(host, name, params["config_path"] or agent_config.CONFIG_PATH, params["account"])
            except HostOperationError as error:
                result["info_error"] = error.message
        if info is not None:
            result["findings"] = info["findings"]
        result.update(failed=True, msg=failure_message(name, {**outcome, "_state": params["state"]}, info))
        return result
