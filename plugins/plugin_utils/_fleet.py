# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet playbooks' reports: what a diagnose or a converge run found, host by host and in all.

Pure Python, no Ansible: the collection's internal filters (plugins/filter/_fleet.py) wrap the
functions here for playbooks/diagnose.yml and playbooks/converge.yml. A *reading* is what
``deadline_cloud.cmf.worker_agent_info`` returned for a host (``findings`` and ``ready``), or a failed
or unreachable task result, or None when the host has no reading at all. A *plan* is the role's
(``deadline_worker_agent_user_result.plan``): with it, each finding says what converge will do about
it. A *result* is the role's fact ``deadline_worker_agent_user_result``.

What a run publishes for AWX and Automation Platform (``set_stats``) is built to merge: AWX merges the
artifacts of job slices, and of workflow nodes, with ``dict.update``, so each run publishes one key of
its own (``deadline_converge_run_<id>``, the id taken from the run's hosts) holding its counts and a
mapping keyed by host. Two slices never overwrite each other; a workflow adds up the counts of every
``deadline_converge_run_*`` key.

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import deadline_api
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._role import sentence

SEVERITIES = ("blocker", "security", "warning", "info")
_VIEW_FIELDS = ("checked", "busy", "status", "active_sessions", "reason")
_LINE = 100  # names per line of a terminal summary are wrapped at about this width
_PUBLISHED_CAUSE = 120  # characters of a cause in what a run publishes (the recap and the report have it whole)


def _severity_rank(severity: str) -> int:
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        return len(SEVERITIES)


def _findings(reading: Mapping[str, Any]) -> list[dict]:
    found = reading.get("findings") or []
    return [f for f in found if isinstance(f, Mapping) and f.get("id")]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def wrapped_names(names: Iterable[str], indent: str = "  ") -> list[str]:
    """Every name, comma-separated, over as many lines as they need (never cut short)."""
    lines: list[str] = []
    current = ""
    for name in names:
        piece = f"{current}, {name}" if current else name
        if current and len(indent) + len(piece) > _LINE:
            lines.append(f"{indent}{current},")
            piece = name
        current = piece
    if current:
        lines.append(f"{indent}{current}")
    return lines


def run_id(hosts: Iterable[str]) -> str:
    """The id of a run's published key: the same hosts give the same id (a re-run of a slice replaces
    its own entry), other hosts another one (slices never collide)."""
    return hashlib.sha256("\n".join(sorted(str(h) for h in hosts)).encode("utf-8")).hexdigest()[:12]


def host_values(hosts: Iterable[str], hostvars: Any, name: str) -> dict:
    """Host name to ``hostvars[host][name]``, None where the host has no such variable (not reached,
    or not run: a later wave, or a host the free strategy has not come to)."""
    values: dict = {}
    for host in hosts or []:
        found = None
        try:
            host_vars = hostvars[host]
            if name in host_vars:
                found = host_vars[name]
        except (KeyError, TypeError):
            found = None
        values[str(host)] = found
    return values


def no_worker_message(pattern: str, limit: str = "") -> str:
    """Why a run found nothing to do, and what to change: it fails rather than pass on no host."""
    where = f"the host pattern '{pattern}'" + (f" with --limit '{limit}'" if limit else "")
    return (
        f"no worker selected: {where} selects no host of the inventory, so nothing was read, changed or tested."
        " Name your workers' group or pattern with -e deadline_workers_hosts=<group or pattern>"
        + (", and a --limit that selects some of them." if limit else ".")
    )


def selection_problem(workers: Iterable[str], pattern: str, limit: str = "", *, one: bool = False) -> str:
    """What is wrong with the workers a run selected ("" when nothing): none at all, or (``one``: the
    self-test) more than one."""
    workers = sorted(str(w) for w in workers or [])
    if not workers:
        return no_worker_message(pattern, limit)
    if one and len(workers) > 1:
        return f"the self-test runs on one worker, and this run selects {len(workers)} ({', '.join(workers)}): pick one with --limit <host>."
    return ""


def not_the_hosts(host: str, workers: Iterable[str], *, checked: bool = True) -> str:
    """What the run's own failure adds when it lands on a worker (--limit leaves localhost out): the
    recap shows it failed there, for the run's fault, not the worker's. ``checked``: a check before
    anything ran; else the summary's (its report)."""
    if host not in set(workers or []):
        return ""
    if checked:
        return f" (the run fails on {host} only because it checks this there: nothing ran on it)"
    return f" (the run's failure, not {host}'s: its summary ran there)"


def percentage(value: Any, name: str = "deadline_workers_max_fail_percentage") -> float:
    """A percentage from 0 to 100, as a number or written like a serial ("5%"); ValueError says what is wrong."""
    text = "" if isinstance(value, bool) or value is None else str(value).strip()
    number = text[:-1].strip() if text.endswith("%") else text
    try:
        found = float(number)
    except ValueError:
        found = -1.0
    if not 0 <= found <= 100:  # NaN fails too
        raise ValueError(f"{name} must be a percentage from 0 to 100 (10, 2.5 or '10%'), not {value!r}")
    return found


def serial_problem(value: Any, name: str = "deadline_workers_serial") -> str:
    """What Ansible's serial could not use in ``value`` ("" when nothing): a number of hosts, a whole
    percentage ("25%"), or a list of those."""
    items = value if isinstance(value, (list, tuple)) else [value]
    for item in items:
        text = "" if isinstance(item, bool) or item is None else str(item).strip()
        number = text[:-1].strip() if text.endswith("%") else text
        if not number.isdigit() or (text.endswith("%") and int(number) > 100):
            return f"{name} must be a number of hosts, a whole percentage ('25%') or a list of those, not {value!r}"
    return ""


def settings_problem(serial: Any = None, max_fail_percentage: Any = None) -> str:
    """What converge.yml checks before its first wave ("" when nothing): its wave size and its
    threshold (each when given), so that a value Ansible or the threshold cannot use stops the run
    before any host is changed, not after the first wave."""
    problems = [serial_problem(serial)] if serial is not None else []
    if max_fail_percentage is not None:
        try:
            percentage(max_fail_percentage)
        except ValueError as error:
            problems.append(str(error))
    return "; ".join(p for p in problems if p)


# ---------------------------------------------------------------------------------------------
# diagnose: readings and what converge would do


def host_entry(host: str, reading: Any, plan: Any = None, error: str = "") -> dict:
    """One host's line of the report: its status, readiness and findings (with what converge does
    about each, when the role's plan for the host is given). Each refusal of the plan is among them,
    whether the reading has a finding of its id or not (a domain group nested in Administrators, a
    group the host cannot read: the plan finds those). ``error`` is the role's, for a host it never
    read (a role variable it cannot use)."""
    entry: dict[str, Any] = {"host": host, "status": "no_reading", "ready": False, "findings": [], "error": "", "converge": "", "busy": 0}
    reading = reading if isinstance(reading, Mapping) else {}
    if reading.get("unreachable"):
        entry.update(status="unreachable", error=str(reading.get("msg") or "unreachable"))
        return entry
    if reading.get("failed") and "findings" not in reading:
        entry.update(status="error", error=str(reading.get("msg") or "the reading failed"))
        return entry
    if "findings" not in reading:  # skipped, or never run
        if error:
            entry.update(status="error", error=str(error))
        else:
            entry["error"] = "no reading: the host was not reached, or it failed before it was read"
        return entry
    plan = plan if isinstance(plan, Mapping) else {}
    findings = [
        {
            "id": str(f["id"]),
            "severity": str(f.get("severity") or "info"),
            "message": str(f.get("message") or ""),
            "fix": str(f.get("fix") or ""),
            "converge": converge_action(str(f["id"]), plan),
        }
        for f in _findings(reading)
    ]
    refused = [r for r in plan.get("refused") or [] if isinstance(r, Mapping) and r.get("id")]
    read_ids = {f["id"] for f in findings}
    findings += [
        {"id": str(r["id"]), "severity": "blocker", "message": str(r.get("message") or ""), "fix": str(r.get("fix") or ""), "converge": "refuses"}
        for r in refused
        if str(r["id"]) not in read_ids
    ]
    ready = bool(reading.get("ready"))
    entry.update(status="ready" if ready else "not_ready", ready=ready, findings=findings)
    if plan:
        entry["converge"] = "refuses: " + ", ".join(str(r["id"]) for r in refused) if refused else ("fixes" if plan.get("act") else "nothing to do")
        entry["busy"] = int(plan.get("sessions") or 1) if plan.get("busy") else 0
        entry["converge_wait"] = busy_wait(plan) if plan.get("busy") and not refused else ""
    return entry


def busy_wait(plan: Mapping[str, Any]) -> str:
    """What converge does about the sessions a busy worker runs, as its plan says."""
    count = int(plan.get("sessions") or 1)
    running = f"busy: {_plural(count, 'session')} running"
    if not plan.get("restart"):
        return f"{running}; converge has no restart to make here"
    when = plan.get("restart_when")
    if when == "never":
        return f"{running}; converge leaves the restart to you (restart_when: never)"
    if when == "always":
        return f"{running}; converge restarts the agent at once and interrupts them (restart_when: always)"
    then = "then interrupts them" if plan.get("when_busy") == "interrupt" else "else leaves the restart pending for the next run"
    return f"{running}; converge waits up to {int(plan.get('idle_timeout') or 0)} s for them to end before it restarts the agent, {then}"


def converge_action(finding_id: str, plan: Any) -> str:
    """What converge does about one finding: it ``fixes`` it, ``refuses`` the host for it, or
    ``leaves`` it (a warning it does not touch); empty without a plan."""
    if not isinstance(plan, Mapping) or not plan:
        return ""
    if finding_id in {str(r.get("id")) for r in plan.get("refused") or [] if isinstance(r, Mapping)}:
        return "refuses"
    if plan.get("refused"):
        return "leaves"
    return "leaves" if finding_id in set(plan.get("predicted_ids") or []) else "fixes"


def _plan_and_error(result: Any) -> tuple[Mapping, str]:
    """The plan and the error of the role's result for a host (``deadline_worker_agent_user_result``)."""
    if not isinstance(result, Mapping):
        return {}, ""
    plan = result.get("plan")
    return (plan if isinstance(plan, Mapping) else {}), str(result.get("error") or "")


def summarize(readings: Mapping[str, Any], results: Mapping[str, Any] | None = None) -> dict:
    """The whole run: how many hosts are ready, and which findings hold how many hosts back.
    ``results``: host to the role's result, whose plan says what converge does about each finding."""
    results = results or {}
    hosts = [host_entry(str(host), reading, *_plan_and_error(results.get(host))) for host, reading in readings.items()]
    by_id: dict[str, dict] = {}
    for entry in hosts:
        for finding in entry["findings"]:
            item = by_id.setdefault(
                finding["id"],
                {
                    "id": finding["id"],
                    "severity": finding["severity"],
                    "hosts": [],
                    "message": finding["message"],
                    "fix": finding["fix"],
                    "converge_hosts": {},
                },
            )
            if entry["host"] not in item["hosts"]:
                item["hosts"].append(entry["host"])
                if finding["converge"]:
                    item["converge_hosts"].setdefault(finding["converge"], []).append(entry["host"])
    findings = sorted(by_id.values(), key=lambda f: (_severity_rank(f["severity"]), -len(f["hosts"]), f["id"]))
    for item in findings:
        item["hosts"].sort()
        item["count"] = len(item["hosts"])
        # what converge does about it: one word when it does the same on every host, else "" (see converge_hosts)
        actions = item["converge_hosts"]
        item["converge"] = next(iter(actions)) if len(actions) == 1 and len(next(iter(actions.values()))) == item["count"] else ""
        for names in actions.values():
            names.sort()
    counts = dict.fromkeys(("ready", "not_ready", "unreachable", "error", "no_reading"), 0)
    for entry in hosts:
        counts[entry["status"]] += 1
    return {
        "total": len(hosts),
        "ready": counts["ready"],
        "not_ready": counts["not_ready"],
        "unreachable": counts["unreachable"],
        "errors": counts["error"] + counts["no_reading"],
        "busy": sorted(e["host"] for e in hosts if e.get("busy")),
        "holding_back": [f for f in findings if f["severity"] == "blocker"],
        "findings": findings,
        "hosts": sorted(hosts, key=lambda e: e["host"]),
    }


def report_lines(summary: Mapping[str, Any]) -> list[str]:
    """The summary as lines for a terminal: totals, then findings by severity and host count, each
    with every host it holds (wrapped, never cut short)."""
    total = int(summary["total"])
    head = f"{_plural(total, 'host')}: {summary['ready']} ready, {summary['not_ready']} not ready"
    if summary["unreachable"]:
        head += f", {summary['unreachable']} unreachable"
    if summary["errors"]:
        head += f", {summary['errors']} without a reading"
    lines = [head]
    findings = list(summary["findings"])
    if not findings:
        lines.append("no findings")
    for severity in SEVERITIES:
        group = [f for f in findings if f["severity"] == severity]
        if not group:
            continue
        title = {
            "blocker": "holding hosts back (blocker)",
            "security": "security",
            "warning": "warnings",
            "info": "information",
        }[severity]
        lines.append(f"{title}:")
        for item in group:
            actions = item.get("converge_hosts") or {}
            if item.get("converge"):
                action = f", converge {item['converge']} it"
            elif actions:
                action = ", converge " + ", ".join(f"{verb} it on {len(hosts)}" for verb, hosts in sorted(actions.items()))
            else:
                action = ""
            lines.append(f"  {item['id']} on {_plural(item['count'], 'host')}{action}:")
            lines.extend(wrapped_names(item["hosts"], "    "))
    busy = list(summary.get("busy") or [])
    if busy:
        lines.append(f"busy now ({len(busy)}), converge waits for their sessions to end before it restarts the agent:")
        lines.extend(wrapped_names(busy, "  "))
    failed = [e for e in summary["hosts"] if e["status"] in ("unreachable", "error", "no_reading")]
    if failed:
        lines.append("without a reading:")
        lines.extend(f"  {e['host']}: {e['error']}" for e in failed)
    return lines


def findings_lines(reading: Any, result: Any = None, host: str = "") -> list[str]:
    """One host's findings, one line each: severity, id, message, then the fix (and what converge
    does about it, given the role's result), and whether converge will wait for its sessions."""
    entry = host_entry(host, reading, *_plan_and_error(result))
    if entry["status"] in ("unreachable", "error", "no_reading"):
        return [f"{entry['status']}: {entry['error']}"]
    lines = ["ready: a WORKER_AGENT_USER job would run" if entry["ready"] else "not ready"]
    for f in sorted(entry["findings"], key=lambda f: (_severity_rank(f["severity"]), f["id"])):
        lines.append(f"{f['severity'].upper()} {f['id']}: {f['message']}")
        if f["fix"]:
            lines.append(f"  fix: {f['fix']}")
        if f["converge"]:
            lines.append(f"  converge {f['converge']} it")
    if entry.get("converge_wait"):
        lines.append(entry["converge_wait"])
    return lines


CSV_COLUMNS = ("host", "status", "ready", "finding", "severity", "converge", "message", "fix")


def report_csv(summary: Mapping[str, Any]) -> str:
    """One row per host and finding (a host without findings has one row with an empty finding)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for entry in summary["hosts"]:
        rows = entry["findings"] or [{"id": "", "severity": "", "converge": "", "message": entry["error"], "fix": ""}]
        for f in rows:
            writer.writerow(
                (
                    entry["host"],
                    entry["status"],
                    str(entry["ready"]).lower(),
                    f["id"],
                    f["severity"],
                    f["converge"],
                    f["message"],
                    f["fix"],
                )
            )
    return out.getvalue()


def report_json(summary: Mapping[str, Any]) -> str:
    return json.dumps(summary, indent=2, sort_keys=False) + "\n"


def not_ready_messages(summary: Mapping[str, Any]) -> dict[str, str]:
    """Host to the message diagnose fails it with when asked to gate: what holds it back, the fix,
    and what converge does about it; every host that is not ready has one."""
    messages = {}
    for e in summary["hosts"]:
        if e["ready"]:
            continue
        if e["status"] in ("unreachable", "error", "no_reading"):
            messages[e["host"]] = f"{e['status']}: {e['error']}"
            continue
        blockers = [f for f in e["findings"] if f["severity"] == "blocker"] or [f for f in e["findings"] if f["severity"] == "security"]
        parts = [
            f"{f['id']}: {sentence(f['message'])}"
            + (f" Fix: {sentence(f['fix'])}" if f["fix"] else "")
            + (f" Converge {f['converge']} it." if f["converge"] else "")
            for f in blockers
        ]
        messages[e["host"]] = "not ready for WORKER_AGENT_USER jobs: " + (" | ".join(parts) or "the agent's verdict is not ready")
    return messages


def diagnose_published(summary: Mapping[str, Any]) -> dict:
    """What diagnose publishes with set_stats: one key of this run's own, its counts and each host."""
    hosts = {
        e["host"]: {
            "status": e["status"],
            "ready": e["ready"],
            **({"findings": [f["id"] for f in e["findings"] if f["severity"] in ("blocker", "security")]} if e["findings"] else {}),
            **({"converge": e["converge"]} if e.get("converge") else {}),
            **({"busy": e["busy"]} if e.get("busy") else {}),
            **({"error": _short(e["error"])} if e.get("error") else {}),
        }
        for e in summary["hosts"]
    }
    counts = {key: summary[key] for key in ("total", "ready", "not_ready", "unreachable", "errors")}
    return {f"deadline_diagnose_run_{run_id(hosts)}": {"counts": counts, "hosts": hosts}}


# ---------------------------------------------------------------------------------------------
# converge: what happened to each host


CONVERGE_STATUSES = (
    "fixed",
    "already_fine",
    "restart_pending",
    "would_fix",
    "would_wait",
    "refused",
    "failed",
    "not_ready",
    "unreachable",
    "not_run",
)
# Marked failed in the recap after the waves, each with its cause (a pending restart is not a failure).
FAILING_STATUSES = ("refused", "failed", "not_ready", "unreachable")
# Count against the failure threshold: refused hosts do not (they were left as they were, as expected).
THRESHOLD_STATUSES = ("failed", "not_ready", "unreachable")
_CONVERGE_TITLES = {
    "fixed": "fixed",
    "already_fine": "already fine",
    "restart_pending": "restart pending",
    "would_fix": "would be fixed",
    "would_wait": "would wait for idle",
    "refused": "refused",
    "failed": "failed",
    "not_ready": "not ready",
    "unreachable": "unreachable",
    "not_run": "not run",
}
# Printed one line per host with the detail; the others as names only.
_DETAILED = ("would_wait", "restart_pending", "refused", "failed", "not_ready", "unreachable")


def _short(text: str) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= _PUBLISHED_CAUSE else text[: _PUBLISHED_CAUSE - 1] + "…"


def _count(value: Any) -> int:
    try:
        return max(int(value or 0), 0)
    except (TypeError, ValueError):
        return 0


def _check_mode_status(result: Mapping[str, Any]) -> str:
    """What the real run would report, from a check-mode result."""
    plan = result.get("plan") or {}
    status = str(result["status"])
    if status != "would_change":
        return status
    if plan.get("restart") and plan.get("restart_when") == "never":
        return "restart_pending"
    if plan.get("restart") and plan.get("busy") and plan.get("restart_when") == "idle":
        return "would_wait"
    return "would_fix"


def converge_entry(host: str, result: Any) -> dict:
    """One host of a converge run, from its ``deadline_worker_agent_user_result`` (None: not run)."""
    entry: dict[str, Any] = {"host": host, "status": "not_run", "detail": "", "brief": "", "sessions": 0, "interrupted_sessions": 0, "service_view": None}
    if not isinstance(result, Mapping) or not result.get("status"):
        entry["detail"] = entry["brief"] = "not run: the role has no result for this host (the waves stopped before it, or it was left out)"
        return entry
    plan = result.get("plan") if isinstance(result.get("plan"), Mapping) else {}
    status = _check_mode_status(result) if result.get("check_mode") else str(result["status"])
    if status == "planned":  # cut off between its plan and its changes: not done
        status = "failed"
    detail = ""
    if status in FAILING_STATUSES:
        detail = str(result.get("cause") or result.get("error") or "")  # the role's cause names what it changed first
        if status != "refused" and result.get("changes"):  # published whole: the published cause is cut short
            entry["changes"] = [str(c) for c in result["changes"]]
    elif status == "restart_pending":
        running = _count(result.get("sessions_running"))
        detail = (f"busy: {_plural(running, 'session')} running; the next run restarts the agent once it is idle" if running
                  else str(result.get("restart_pending_reason") or ""))
    elif status == "would_wait":
        detail = busy_wait(plan)
    elif status in ("fixed", "would_fix"):
        detail = "; ".join(result.get("changes") or [])
        if status == "would_fix" and plan.get("busy") and plan.get("restart"):
            detail += f"; the restart would interrupt {_plural(int(plan.get('sessions') or 1), 'session')} (restart_when: always)"
    sessions = 0
    if status == "restart_pending":  # the sessions the restart was left pending for (0: another reason)
        sessions = _count(result.get("sessions_running"))
    elif status == "would_wait":
        sessions = int(plan.get("sessions") or 1)
    # What the summary prints for a failing host: the recap's failure of the host gives the whole cause.
    refused = [str(r.get("id")) for r in result.get("refused") or [] if isinstance(r, Mapping)]
    ids = refused
    if status == "not_ready" and not ids:
        ids = [str(f.get("id")) for f in result.get("findings_after") or [] if isinstance(f, Mapping) and f.get("severity") == "blocker"]
    brief = ", ".join(ids) if status in ("refused", "not_ready") and ids else _short(detail)
    entry.update(
        status=status,
        detail=detail,
        brief=brief,
        sessions=sessions,
        interrupted_sessions=int(result.get("interrupted_sessions") or 0),
        service_view=result.get("service_view") if isinstance(result.get("service_view"), Mapping) else None,
        refused=refused,
    )
    return entry


def _over(failed: int, run: int, max_fail_percentage: float) -> bool:
    return bool(run) and 100.0 * failed / run > float(max_fail_percentage)


def converge_summary(results: Mapping[str, Any], stop: Mapping[str, Any] | None = None) -> dict:
    """Every host of a converge run by status, with counts (JSON, CSV and set_stats take this).
    ``stop``: what converge.yml recorded when the threshold ended its waves (see threshold_stop)."""
    hosts = sorted((converge_entry(str(h), r) for h, r in results.items()), key=lambda e: e["host"])
    not_run = [e["host"] for e in hosts if e["status"] == "not_run"]
    counts = dict.fromkeys(CONVERGE_STATUSES, 0)
    for entry in hosts:
        counts[entry["status"]] += 1
    views = [deadline_api.ServiceView(**{k: v for k, v in e["service_view"].items() if k in _VIEW_FIELDS}) for e in hosts if e.get("service_view")]
    return {
        "total": len(hosts),
        "check_mode": any(isinstance(r, Mapping) and r.get("check_mode") for r in results.values()),
        "counts": counts,
        "failing": sum(counts[s] for s in FAILING_STATUSES),
        "interrupted_sessions": sum(e["interrupted_sessions"] for e in hosts),
        # said once for the run, not per host (the same controller asks for every host)
        "service_api": deadline_api.not_asked_notice(views) or ("the Deadline Cloud API confirmed it for every host restarted" if views else ""),
        # the waves the threshold kept from running (none left to keep: it stopped nothing)
        "stopped": {**stop, "not_run": not_run} if stop and not_run else None,
        "hosts": hosts,
    }


def converge_lines(summary: Mapping[str, Any]) -> list[str]:
    """The converge summary for a terminal: counts, then every host by status (names, or one line
    each with its cause where it needs a look), never cut short."""
    counts = summary["counts"]
    shown = [s for s in CONVERGE_STATUSES if counts.get(s)] or ["fixed"]
    lines = [f"{_plural(int(summary['total']), 'host')}: " + ", ".join(f"{counts[s]} {_CONVERGE_TITLES[s]}" for s in shown)]
    if summary.get("check_mode"):
        lines.append("check mode: nothing was changed; this is what the run would do")
    stopped = summary.get("stopped")
    if stopped:
        lines.append(
            f"the waves stopped: {stopped['failed']} of {_plural(int(stopped['run']), 'host')} run failed, more than"
            f" {stopped['max_fail_percentage']:g}% (deadline_workers_max_fail_percentage); {len(stopped['not_run'])} not run"
        )
    for status in CONVERGE_STATUSES:
        group = [e for e in summary["hosts"] if e["status"] == status]
        if not group:
            continue
        if status in _DETAILED:
            lines.append(f"{_CONVERGE_TITLES[status]}:")
            lines.extend(f"  {e['host']}: {e['brief'] if status in FAILING_STATUSES else e['detail']}" for e in group)
        else:
            lines.append(f"{_CONVERGE_TITLES[status]} ({len(group)}):")
            lines.extend(wrapped_names((e["host"] for e in group), "  "))
    interrupted = [e for e in summary["hosts"] if e.get("interrupted_sessions")]
    if interrupted:
        lines.append(
            f"sessions interrupted: {summary['interrupted_sessions']} ("
            + ", ".join(f"{e['host']}: {e['interrupted_sessions']}" for e in interrupted)
            + ")"
        )
    if summary.get("service_api"):
        lines.append(f"busy or idle: {summary['service_api']}")
    if summary.get("failing"):
        lines.append(
            f"{summary['failing']} of {_plural(int(summary['total']), 'host')} refused, failed, not ready or unreachable:"
            " each is marked failed in the recap below, with its cause"
        )
    return lines


CONVERGE_CSV_COLUMNS = ("host", "status", "sessions", "interrupted_sessions", "detail")


def converge_csv(summary: Mapping[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CONVERGE_CSV_COLUMNS)
    for entry in summary["hosts"]:
        writer.writerow((entry["host"], entry["status"], entry["sessions"], entry["interrupted_sessions"], entry["detail"]))
    return out.getvalue()


def converge_published(summary: Mapping[str, Any]) -> dict:
    """What converge publishes with set_stats: one key of this run's own (see the module docstring),
    its counts (a workflow adds them up over every deadline_converge_run_* key) and each host's
    status, with the finding ids it was refused for or the start of its cause."""
    hosts: dict[str, dict] = {}
    for e in summary["hosts"]:
        item: dict[str, Any] = {"status": e["status"]}
        if e.get("refused"):
            item["refused"] = e["refused"]
        elif e["status"] in FAILING_STATUSES or e["status"] in ("restart_pending", "not_run"):
            item["cause"] = _short(e["detail"])
        if e.get("changes"):  # a failing host's changes before it stopped, whole (its cause is cut short)
            item["changes"] = e["changes"]
        if e.get("sessions"):
            item["sessions"] = e["sessions"]
        if e.get("interrupted_sessions"):
            item["interrupted_sessions"] = e["interrupted_sessions"]
        hosts[e["host"]] = item
    counts = {"total": summary["total"], **summary["counts"]}
    return {f"deadline_converge_run_{run_id(hosts)}": {"check_mode": bool(summary.get("check_mode")), "counts": counts, "hosts": hosts}}


def report_problem(path: str, written: Any) -> str:
    """Why the report file was not written ("" when it was, or when there is none): the run fails for it."""
    if path and isinstance(written, Mapping) and written.get("failed"):
        return f"the report could not be written to {path}: {written.get('msg') or 'the copy failed'}"
    return ""


def report_line(path: str, written: Any) -> str:
    """Where a summary play's report went: the copy task's result ``written`` says whether it was written."""
    if not path:
        return ""
    if isinstance(written, Mapping) and written.get("failed"):
        return f"report NOT written to {path}: {written.get('msg') or 'the copy failed'}"
    return f"report written to {path}"


def threshold_stop(results: Mapping[str, Any], max_fail_percentage: Any) -> dict:
    """What converge.yml records at the end of each wave, before it decides whether another starts:
    {} to go on; else the failed hosts, the hosts run so far, and the threshold, when more than
    ``max_fail_percentage`` percent of those failed. Refused hosts do not count as failed (they are
    expected, and they were left as they were); a host between its plan and its changes
    (``planned``) is not done, and counts neither way."""
    threshold = percentage(max_fail_percentage)
    entries = [converge_entry(str(h), r) for h, r in results.items() if isinstance(r, Mapping) and r.get("status") not in (None, "", "planned")]
    failed = [e["host"] for e in entries if e["status"] in THRESHOLD_STATUSES]
    if not failed or not _over(len(failed), len(entries), threshold):
        return {}
    return {"failed": len(failed), "run": len(entries), "max_fail_percentage": threshold, "hosts": failed}
