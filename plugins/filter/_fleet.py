# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Internal filters of the fleet playbooks (converge.yml, diagnose.yml, selftest.yml): their checks and reports, in plugin_utils._fleet.

Internal to this collection: not a public API. The playbooks use them; their names, arguments and
results may change in any release, without notice or deprecation. Use the playbooks' reports, the
data they publish with set_stats, or the role's fact deadline_worker_agent_user_result instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils import _fleet as fleet

RESULT = "deadline_worker_agent_user_result"
READING = "deadline_worker_agent_user__before"
STOP = "deadline_workers__stop"  # converge.yml's record of the threshold, at the end of each wave


def _hosts(hosts: Any) -> list[str]:
    return [str(h) for h in hosts or []]


def _view(workers: list[str], summary: Mapping, report: Any, csv_text: Callable[[Mapping], str], **views: Any) -> dict:
    """What a summary play uses: the summary, its views, and the report file's path and text."""
    path = str(report or "")
    text = (csv_text(summary) if path.lower().endswith(".csv") else fleet.report_json(summary)) if path else ""
    return {"workers": len(workers), "selected": workers, "summary": summary, **views, "report_path": path, "report_text": text}


def _none_selected(pattern: Any, limit: Any) -> dict:
    return {"workers": 0, "lines": [fleet.no_worker_message(str(pattern), str(limit or ""))]}


def fleet_check(workers: Any, *, pattern: str = "", limit: str = "", serial: Any = None, max_fail_percentage: Any = None,
                one: bool = False, host: str = "") -> str:
    """Why a fleet playbook must not start ("" when it may): no worker selected (several, with ``one``),
    or (converge) a wave size or failure threshold it cannot use."""
    workers = _hosts(workers)
    problem = " ".join(p for p in (fleet.selection_problem(workers, str(pattern), str(limit or ""), one=bool(one)),
                                   fleet.settings_problem(serial, max_fail_percentage)) if p)
    return problem + fleet.not_the_hosts(str(host), workers) if problem else ""


def converge_stop(hosts: Any, hostvars: Any, max_fail_percentage: Any) -> dict:
    """What converge.yml records at the end of a wave: {} to go on, else why the waves stop."""
    return fleet.threshold_stop(fleet.host_values(_hosts(hosts), hostvars, RESULT), max_fail_percentage)


def converge_summary(workers: Any, hostvars: Any, *, pattern: str = "", limit: str = "", report: Any = "") -> dict:
    """The run's summary, its terminal lines (the playbook adds where the report went), what it
    publishes, the workers to mark failed and its report file's text."""
    workers = _hosts(workers)
    if not workers:
        return _none_selected(pattern, limit)
    results = fleet.host_values(workers, hostvars, RESULT)
    stop = next((record for record in fleet.host_values(workers, hostvars, STOP).values() if record), None)
    summary = fleet.converge_summary(results, stop)
    failing = {e["host"]: str((results[e["host"]] or {}).get("cause") or e["detail"]) for e in summary["hosts"] if e["status"] in fleet.FAILING_STATUSES}
    return _view(
        workers, summary, report, fleet.converge_csv,
        lines=fleet.converge_lines(summary), published=fleet.converge_published(summary), failing=failing,
    )


def diagnose_summary(workers: Any, hostvars: Any, *, pattern: str = "", limit: str = "", report: Any = "", gate: Any = False) -> dict:
    """The diagnosis of the run: its summary, terminal lines, what it publishes, the workers to mark
    failed (with ``gate``: each that is not ready, with its message) and its report file's text."""
    workers = _hosts(workers)
    if not workers:
        return _none_selected(pattern, limit)
    summary = fleet.summarize(fleet.host_values(workers, hostvars, READING), fleet.host_values(workers, hostvars, RESULT))
    return _view(
        workers, summary, report, fleet.report_csv,
        lines=fleet.report_lines(summary), published=fleet.diagnose_published(summary),
        failing=fleet.not_ready_messages(summary) if gate else {},
    )


def fleet_lines(run: Mapping, written: Any = None) -> list[str]:
    """A summary play's last lines: the run's, then where its report went (``written``: the copy task's result)."""
    line = fleet.report_line(str(run.get("report_path") or ""), written)
    return [*run.get("lines", []), *([line] if line else [])]


def fleet_problem(run: Mapping, written: Any = None, host: str = "") -> str:
    """The run's own failure, "" when none: it selected no worker, or its report file could not be
    written (``written``: the copy task's result). The last play fails ``host`` with it, after the
    workers are marked."""
    workers = _hosts(run.get("selected"))
    problem = str((run.get("lines") or [""])[0]) if not run.get("workers") else fleet.report_problem(str(run.get("report_path") or ""), written)
    return problem + fleet.not_the_hosts(str(host), workers, checked=False) if problem else ""


def fleet_failing(run: Mapping, written: Any = None, host: str = "") -> list[dict]:
    """Each host the marking play fails, with its cause: the workers the summary fails, and ``host``
    (the summary's, when --limit leaves localhost out) with the run's own failure, if any (see
    fleet_problem). localhost is never added: the marking play has it (adding it to the inventory
    would make a second localhost), and fails it there with fleet_problem."""
    causes = {str(h): str(c) for h, c in (run.get("failing") or {}).items()}
    problem = fleet_problem(run, written, host)
    if problem and host != "localhost":
        causes[host] = f"{causes[host]} | {problem}" if host in causes else problem
    return [{"host": name, "cause": cause} for name, cause in causes.items()]


def diagnose_host_lines(reading: Any, result: Any = None) -> list[str]:
    """One host's findings, and what converge does about each (``result``: the role's planned outcome)."""
    return fleet.findings_lines(reading, result)


class FilterModule:
    def filters(self) -> dict:
        return {
            "_converge_stop": converge_stop,
            "_converge_summary": converge_summary,
            "_diagnose_summary": diagnose_summary,
            "_diagnose_host_lines": diagnose_host_lines,
            "_fleet_check": fleet_check,
            "_fleet_failing": fleet_failing,
            "_fleet_problem": fleet_problem,
            "_fleet_lines": fleet_lines,
        }
