# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report and the role's refusals, from readings written by hand."""

from __future__ import annotations

import csv
import io
import json

from ansible_collections.deadline_cloud.cmf.plugins.filter._fleet import FilterModule
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils import _fleet as fleet_report
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils import _role as role


def finding(fid: str, severity: str = "blocker", message: str = "", fix: str = "") -> dict:
    return {"id": fid, "severity": severity, "message": message or f"{fid} message", "fix": fix or f"{fid} fix"}


def reading(*findings: dict, ready: bool = False, **facts: object) -> dict:
    base = {
        "changed": False,
        "ready": ready,
        "findings": list(findings),
        "service": {"exists": True, "state": "running"},
        "account": {"name": "deadline-worker", "sid": "S-1-5-21-1-2-3-1001"},
        "config": {"exists": True, "encoding": "utf-8", "parse_error": None},
        "agent": {"version": "0.33.2"},
    }
    base.update(facts)
    return base


INSTALLER = reading(
    finding("AGENT_OPT_IN_MISSING"),
    finding("AGENT_USER_IS_ADMIN", "security"),
    finding("MESSAGE_IS_MISLEADING", "info"),
)


def test_summary_counts_ready_and_groups_findings_by_id():
    summary = fleet_report.summarize(
        {
            "w1": INSTALLER,
            "w2": INSTALLER,
            "w3": reading(finding("ENV_OVERRIDE"), finding("AGENT_OPT_IN_MISSING")),
            "w4": reading(ready=True),
            "w5": {"unreachable": True, "msg": "timed out"},
            "w6": None,
        }
    )
    assert (summary["total"], summary["ready"], summary["not_ready"]) == (6, 1, 3)
    assert (summary["unreachable"], summary["errors"]) == (1, 1)
    ids = [f["id"] for f in summary["findings"]]
    # blockers first, the most widespread first within a severity; info last
    assert ids == ["AGENT_OPT_IN_MISSING", "ENV_OVERRIDE", "AGENT_USER_IS_ADMIN", "MESSAGE_IS_MISLEADING"]
    opt_in = summary["findings"][0]
    assert opt_in["count"] == 3 and opt_in["hosts"] == ["w1", "w2", "w3"]
    assert [f["id"] for f in summary["holding_back"]] == ["AGENT_OPT_IN_MISSING", "ENV_OVERRIDE"]
    status = {e["host"]: e["status"] for e in summary["hosts"]}
    assert status == {
        "w1": "not_ready",
        "w2": "not_ready",
        "w3": "not_ready",
        "w4": "ready",
        "w5": "unreachable",
        "w6": "no_reading",
    }


def test_a_failed_reading_is_an_error_with_its_message():
    summary = fleet_report.summarize({"w1": {"failed": True, "msg": "state file missing"}})
    assert summary["errors"] == 1
    assert summary["hosts"][0]["error"] == "state file missing"
    assert "w1: state file missing" in "\n".join(fleet_report.report_lines(summary))


def test_report_lines_name_every_host_and_read_well_in_a_terminal():
    summary = fleet_report.summarize({f"w{i:02}": INSTALLER for i in range(40)} | {"ok": reading(ready=True)})
    lines = fleet_report.report_lines(summary)
    assert lines[0] == "41 hosts: 1 ready, 40 not ready"
    assert "holding hosts back (blocker):" in lines
    at = lines.index("  AGENT_OPT_IN_MISSING on 40 hosts:")
    named = " ".join(lines[at + 1 : at + 4])
    assert all(f"w{i:02}" in named for i in range(40)) and "more" not in named  # never cut short
    assert all(len(x) <= 100 for x in lines)


def test_no_findings_says_so():
    lines = fleet_report.report_lines(fleet_report.summarize({"w1": reading(ready=True)}))
    assert lines == ["1 host: 1 ready, 0 not ready", "no findings"]


def test_csv_has_a_row_per_host_and_finding():
    summary = fleet_report.summarize(
        {"w1": INSTALLER, "w2": reading(ready=True), "w3": {"unreachable": True, "msg": "x"}}
    )
    rows = list(csv.DictReader(io.StringIO(fleet_report.report_csv(summary))))
    assert [r["host"] for r in rows] == ["w1", "w1", "w1", "w2", "w3"]
    assert rows[0]["finding"] == "AGENT_OPT_IN_MISSING" and rows[0]["ready"] == "false"
    assert rows[3]["status"] == "ready" and rows[3]["finding"] == ""
    assert rows[4]["status"] == "unreachable"


def test_json_round_trips():
    summary = fleet_report.summarize({"w1": INSTALLER})
    assert json.loads(fleet_report.report_json(summary)) == summary


def test_findings_lines_show_severity_id_and_fix():
    lines = fleet_report.findings_lines(INSTALLER)
    assert lines[0] == "not ready"
    assert lines[1] == "BLOCKER AGENT_OPT_IN_MISSING: AGENT_OPT_IN_MISSING message"
    assert lines[2] == "  fix: AGENT_OPT_IN_MISSING fix"
    assert fleet_report.findings_lines(reading(ready=True))[0].startswith("ready")


def planned(plan: dict | None = None, error: str = "") -> dict:
    """The role's planned outcome for a host (deadline_worker_agent_user_result after plan.yml)."""
    return {"status": "failed" if error else "planned", "error": error, "refused": [], "plan": plan or {"refused": [], "act": True}}


# what plan.yml registers when the role's variables are refused before any call: the reading is skipped
SKIPPED = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False", "false_condition": "..."}
TYPO = "deadline_worker_agent_user_rights: unknown user right SeServiceLogonRigth (did you mean SeServiceLogonRight?)"


def test_a_role_variable_the_role_cannot_use_is_the_hosts_error_with_its_cause_not_a_false_not_ready():
    summary = fleet_report.summarize({"w1": SKIPPED}, {"w1": planned(error=TYPO)})
    (entry,) = summary["hosts"]
    assert (entry["status"], entry["ready"], entry["error"]) == ("error", False, TYPO)
    assert (summary["not_ready"], summary["errors"]) == (0, 1)
    lines = fleet_report.report_lines(summary)
    assert lines[0] == "1 host: 0 ready, 0 not ready, 1 without a reading" and f"  w1: {TYPO}" in lines
    assert fleet_report.not_ready_messages(summary) == {"w1": f"error: {TYPO}"}  # the gate's cause is the role's, not a verdict
    assert fleet_report.findings_lines(SKIPPED, planned(error=TYPO)) == [f"error: {TYPO}"]
    assert fleet_report.summarize({"w1": SKIPPED})["hosts"][0]["status"] == "no_reading"  # no role result: nothing to name


REMOVAL_REFUSED = {
    "id": "REMOVAL_REFUSED",
    "message": "refusing to remove CORP\\render-svc from Administrators: it is also a member through CORP\\Render Admins",
    "fix": "take the account out of that nested group, then run again",
}


def test_a_plan_refusal_the_reading_has_no_finding_for_is_shown_in_every_view():
    plan = {"refused": [REMOVAL_REFUSED], "act": False, "restart": False}
    summary = fleet_report.summarize({"w1": INSTALLER}, {"w1": planned(plan)})
    (entry,) = summary["hosts"]
    refusal = next(f for f in entry["findings"] if f["id"] == "REMOVAL_REFUSED")
    assert refusal == {**REMOVAL_REFUSED, "severity": "blocker", "converge": "refuses"}
    assert entry["converge"] == "refuses: REMOVAL_REFUSED"
    # the other findings: converge leaves them, since it refuses the host
    assert {f["id"]: f["converge"] for f in entry["findings"] if f["id"] != "REMOVAL_REFUSED"} == {
        "AGENT_OPT_IN_MISSING": "leaves", "AGENT_USER_IS_ADMIN": "leaves", "MESSAGE_IS_MISLEADING": "leaves",
    }
    lines = fleet_report.report_lines(summary)
    assert lines[lines.index("  REMOVAL_REFUSED on 1 host, converge refuses it:") + 1] == "    w1"
    rows = list(csv.DictReader(io.StringIO(fleet_report.report_csv(summary))))
    assert {(r["finding"], r["severity"], r["converge"], r["fix"]) for r in rows} >= {("REMOVAL_REFUSED", "blocker", "refuses", REMOVAL_REFUSED["fix"])}
    gate = fleet_report.not_ready_messages(summary)["w1"]
    assert "REMOVAL_REFUSED: refusing to remove" in gate and "Fix: take the account out of that nested group, then run again. Converge refuses it." in gate
    host_lines = fleet_report.findings_lines(INSTALLER, planned(plan))
    at = host_lines.index(f"BLOCKER REMOVAL_REFUSED: {REMOVAL_REFUSED['message']}")
    assert host_lines[at + 1 : at + 3] == [f"  fix: {REMOVAL_REFUSED['fix']}", "  converge refuses it"]
    # a refusal of an id the reading has is listed once, as the reading's finding
    summary = fleet_report.summarize({"w1": reading(finding("ENV_OVERRIDE"))}, {"w1": planned({"refused": [{"id": "ENV_OVERRIDE"}]})})
    assert [(f["id"], f["converge"]) for f in summary["hosts"][0]["findings"]] == [("ENV_OVERRIDE", "refuses")]


def test_the_filters_are_internal_and_summarize_what_hostvars_hold():
    filters = FilterModule().filters()
    assert set(filters) == {"_converge_stop", "_converge_summary", "_diagnose_summary", "_diagnose_host_lines", "_fleet_check",
                            "_fleet_failing", "_fleet_lines", "_fleet_problem"}
    hostvars = {"w1": {"deadline_worker_agent_user__before": INSTALLER}, "w2": {}}
    view = filters["_diagnose_summary"](["w1", "w2"], hostvars, pattern="render_nodes", report="/tmp/x.csv")
    assert view["lines"][0] == "2 hosts: 0 ready, 1 not ready, 1 without a reading"
    assert view["report_path"] == "/tmp/x.csv" and view["report_text"].startswith("host,status,ready,finding")
    assert view["failing"] == {}  # no gate: no worker is marked failed
    gated = filters["_diagnose_summary"](["w1", "w2"], hostvars, pattern="render_nodes", gate=True)["failing"]
    assert set(gated) == {"w1", "w2"} and "AGENT_OPT_IN_MISSING: AGENT_OPT_IN_MISSING message." in gated["w1"]
    empty = filters["_diagnose_summary"]([], hostvars, pattern="render_nodes", limit="render-07")
    assert empty["workers"] == 0 and "the host pattern 'render_nodes' with --limit 'render-07' selects no host" in empty["lines"][0]


def outcome(status: str, **extra) -> dict:
    return {"status": status, "changes": [], "refused": [], "findings_after": [], "error": "", **extra}


def test_converge_summary_counts_each_status_and_names_every_host():
    results = {
        "w1": outcome("fixed", changes=["granted SeIncreaseQuotaPrivilege", "restarted the service"]),
        "w2": outcome("already_fine"),
        "w3": outcome("restart_pending", restart_pending_reason="busy: 3 session(s) running", sessions_running=3),
        "w4": outcome("refused", refused=[{"id": "ENV_OVERRIDE", "message": "DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER=false", "fix": "remove it"}],
                      cause="the role changed nothing on this host, because it cannot fix: ENV_OVERRIDE: x. Fix: remove it."),
        "w5": outcome("failed", error="control_service failed on the host", cause="control_service failed on the host"),
        "w6": None,
        "w7": outcome("planned", cause="the run stopped on this host after its plan, before its changes were done: run it again"),
        "w8": outcome("fixed", changes=["restarted the service"], interrupted_sessions=2),
    }
    summary = fleet_report.converge_summary(results)
    assert summary["counts"] == {
        "fixed": 2, "already_fine": 1, "restart_pending": 1, "would_fix": 0, "would_wait": 0,
        "refused": 1, "failed": 2, "not_ready": 0, "unreachable": 0, "not_run": 1,
    }
    assert summary["failing"] == 3 and summary["interrupted_sessions"] == 2
    by_host = {e["host"]: e for e in summary["hosts"]}
    assert by_host["w3"]["sessions"] == 3
    assert "ENV_OVERRIDE" in by_host["w4"]["detail"] and "remove it" in by_host["w4"]["detail"]
    lines = fleet_report.converge_lines(summary)
    assert lines[0] == "8 hosts: 2 fixed, 1 already fine, 1 restart pending, 1 refused, 2 failed, 1 not run"
    assert lines[lines.index("fixed (2):") + 1] == "  w1, w8"  # fixed hosts are named
    assert "  w4: ENV_OVERRIDE" in lines  # the ids; the recap's failure of the host gives the whole cause
    assert "sessions interrupted: 2 (w8: 2)" in lines  # and where
    assert lines[-1].startswith("3 of 8 hosts refused, failed, not ready or unreachable: each is marked failed in the recap")
    hostvars = {h: {"deadline_worker_agent_user_result": r} for h, r in results.items()}
    run = FilterModule().filters()["_converge_summary"](list(results), hostvars, report="/srv/reports/converge.json")
    finished = FilterModule().filters()["_fleet_lines"]
    assert finished(run, {"changed": True})[:-1] == lines and finished(run, {"changed": True})[-1] == "report written to /srv/reports/converge.json"
    assert finished(run, {"failed": True, "msg": "Destination directory /srv/reports does not exist"})[-1] == (
        "report NOT written to /srv/reports/converge.json: Destination directory /srv/reports does not exist"
    )
    assert finished({**run, "report_path": ""}, {"skipped": True}) == lines
    assert run["failing"] == {"w4": results["w4"]["cause"], "w5": "control_service failed on the host", "w7": results["w7"]["cause"]}
    rows = list(csv.DictReader(io.StringIO(fleet_report.converge_csv(summary))))
    assert [r["status"] for r in rows] == ["fixed", "already_fine", "restart_pending", "refused", "failed", "not_run", "failed", "fixed"]


def test_the_sessions_of_a_pending_restart_are_the_roles_count_not_read_from_its_text():
    results = {
        "w1": outcome("restart_pending", restart_pending_reason="busy: 2 session(s) running", sessions_running=2),
        "w2": outcome("restart_pending", restart_pending_reason="busy: 9 session(s) running"),  # an outcome without the field
        "w3": outcome("restart_pending", restart_pending_reason="deadline_worker_agent_user_restart_when is never", sessions_running=0),
    }
    by_host = {e["host"]: e["sessions"] for e in fleet_report.converge_summary(results)["hosts"]}
    assert by_host == {"w1": 2, "w2": 0, "w3": 0}
    lines = fleet_report.converge_lines(fleet_report.converge_summary(results))
    assert "  w1: busy: 2 sessions running; the next run restarts the agent once it is idle" in lines
    one = fleet_report.converge_summary({"w1": outcome("restart_pending", restart_pending_reason="busy: 1 session(s) running", sessions_running=1)})
    assert fleet_report.converge_lines(one)[2:] == ["  w1: busy: 1 session running; the next run restarts the agent once it is idle"]
    rows = list(csv.DictReader(io.StringIO(fleet_report.converge_csv(fleet_report.converge_summary(results)))))
    assert [r["sessions"] for r in rows] == ["2", "0", "0"]


def test_a_host_that_failed_part_way_says_what_it_had_changed_everywhere():
    error = r"replacing C:\ProgramData\Amazon\Deadline\Config\worker.toml failed (1177); it was put back as it was"
    done = ["granted SeIncreaseQuotaPrivilege, SeShutdownPrivilege", "left Administrators"]
    failed = outcome("failed", changes=done, error=error)
    failed["cause"] = role.failure_message(failed)  # as the role's outcome sets it
    unreachable = outcome("unreachable", changes=["granted SeShutdownPrivilege"], error="unreachable during writing worker.toml")
    unreachable["cause"] = role.failure_message(unreachable)
    plain = outcome("failed", error="control_service failed on the host")
    plain["cause"] = role.failure_message(plain)  # nothing changed before it
    summary = fleet_report.converge_summary({"w1": failed, "w2": unreachable, "w3": plain})
    detail = {e["host"]: e["detail"] for e in summary["hosts"]}
    assert detail["w1"] == f"changed before it stopped (granted SeIncreaseQuotaPrivilege, SeShutdownPrivilege; left Administrators), then {error}"
    assert detail["w2"] == "changed before it stopped (granted SeShutdownPrivilege), then unreachable during writing worker.toml"
    assert detail["w3"] == "control_service failed on the host"
    assert "  w1: changed before it stopped (granted SeIncreaseQuotaPrivilege" in "\n".join(fleet_report.converge_lines(summary))
    rows = {r["host"]: r for r in csv.DictReader(io.StringIO(fleet_report.converge_csv(summary)))}
    assert "left Administrators" in rows["w1"]["detail"] and error in rows["w1"]["detail"]
    (published,) = fleet_report.converge_published(summary).values()
    assert published["hosts"]["w1"]["changes"] == done
    assert published["hosts"]["w1"]["cause"].startswith("changed before it stopped (")
    assert "changes" not in published["hosts"]["w3"]


def test_refused_hosts_never_pass_the_failure_threshold_failed_ones_do():
    refused = outcome("refused", refused=[{"id": "AGENT_VERSION_UNSUPPORTED", "message": "0.26", "fix": "upgrade"}])
    assert fleet_report.threshold_stop({"a": refused, "b": refused, "c": outcome("fixed")}, 0) == {}
    failing = {"a": outcome("failed", error="boom"), "b": outcome("fixed"), "c": outcome("fixed"), "d": None}
    stop = fleet_report.threshold_stop(failing, "30%")  # 1 of 3 run so far
    assert stop == {"failed": 1, "run": 3, "max_fail_percentage": 30.0, "hosts": ["a"]}
    assert fleet_report.threshold_stop(failing, 34) == {}
    # a host between its plan and its changes is not done: neither failed nor run so far
    in_flight = outcome("planned", cause="the run stopped on this host after its plan, before its changes were done: run it again")
    assert fleet_report.threshold_stop({"a": outcome("failed", error="boom"), "b": outcome("fixed"), "c": in_flight}, 40)["run"] == 2
    assert fleet_report.threshold_stop({"a": outcome("fixed"), "b": in_flight}, 0) == {}


def test_the_summary_says_the_waves_stopped_as_the_run_recorded_it_not_as_it_guesses():
    failing = {"a": outcome("failed", error="boom"), "b": outcome("fixed"), "c": outcome("fixed"), "d": None}
    recorded = fleet_report.threshold_stop(failing, 30)
    summary = fleet_report.converge_summary(failing, recorded)
    assert summary["stopped"] == {**recorded, "not_run": ["d"]}
    assert "the waves stopped: 1 of 3 hosts run failed, more than 30% (deadline_workers_max_fail_percentage); 1 not run" in (
        fleet_report.converge_lines(summary))
    # a host not run without a recorded stop (left out of the play, say) stopped no wave: no such line
    assert fleet_report.converge_summary(failing)["stopped"] is None
    # nor did a stop recorded at the last wave, with no host left to keep from running
    assert fleet_report.converge_summary({"a": outcome("failed", error="boom")}, {**recorded, "failed": 1, "run": 1})["stopped"] is None
    hostvars = {h: {"deadline_worker_agent_user_result": r, "deadline_workers__stop": recorded if h != "d" else {}} for h, r in failing.items()}
    run = FilterModule().filters()["_converge_summary"](list(failing), hostvars)
    assert run["summary"]["stopped"]["not_run"] == ["d"] and run["summary"]["stopped"]["max_fail_percentage"] == 30


def test_check_mode_says_would_fix_and_would_wait_for_a_busy_host():
    plan = {"restart": True, "restart_when": "idle", "busy": False, "sessions": 0, "idle_timeout": 600, "when_busy": "skip"}
    busy_plan = {**plan, "busy": True, "sessions": 2}
    results = {
        "w1": outcome("would_change", check_mode=True, plan=plan, changes=["left Administrators"]),
        "w2": outcome("would_change", check_mode=True, plan=busy_plan),
        "w3": outcome("would_change", check_mode=True, plan={**plan, "restart_when": "never"}),
    }
    summary = fleet_report.converge_summary(results)
    assert [e["status"] for e in summary["hosts"]] == ["would_fix", "would_wait", "restart_pending"]
    lines = fleet_report.converge_lines(summary)
    assert lines[0] == "3 hosts: 1 restart pending, 1 would be fixed, 1 would wait for idle"
    assert lines[1] == "check mode: nothing was changed; this is what the run would do"
    assert any("w2: busy: 2 sessions running; converge waits up to 600 s" in x for x in lines)


def test_what_a_run_publishes_merges_as_awx_merges_slices_and_stays_small():
    def run(hosts, status):
        return fleet_report.converge_published(fleet_report.converge_summary({h: outcome(status) for h in hosts}))

    first, second = run(["w1", "w2"], "fixed"), run(["w3"], "already_fine")
    merged: dict = {}
    merged.update(first)  # AWX: artifacts of each slice, dict.update in turn
    merged.update(second)
    assert len(merged) == 2  # one key per slice: neither overwrites the other
    assert all(key.startswith("deadline_converge_run_") and key.isidentifier() for key in merged)
    total = sum(run["counts"]["total"] for run in merged.values())
    fixed = sum(run["counts"]["fixed"] for run in merged.values())
    hosts = {host: item["status"] for run in merged.values() for host, item in run["hosts"].items()}
    assert (total, fixed, hosts) == (3, 2, {"w1": "fixed", "w2": "fixed", "w3": "already_fine"})
    assert run(["w1", "w2"], "failed").keys() == first.keys()  # a slice run again replaces its own entry
    refused = outcome("refused", refused=[{"id": "ENV_OVERRIDE"}], cause="x" * 5000)
    big = fleet_report.converge_published(fleet_report.converge_summary({f"render-{i:04}": refused for i in range(3000)}))
    assert len(json.dumps(big)) < 1_000_000


def test_a_percentage_is_a_number_or_written_like_the_serial_from_0_to_100():
    assert [fleet_report.percentage(v) for v in (10, "10", 2.5, "2.5", "5%", " 5 % ", "0%", 100)] == [10, 10, 2.5, 2.5, 5, 5, 0, 100]
    for wrong in ("five", "", None, True, -1, "101%", "nan", "5%%", [5]):
        try:
            fleet_report.percentage(wrong)
        except ValueError as error:
            assert str(error).startswith("deadline_workers_max_fail_percentage must be a percentage from 0 to 100 (10, 2.5 or '10%'), not ")
        else:
            raise AssertionError(f"{wrong!r} was taken")


def test_a_serial_is_a_number_of_hosts_a_whole_percentage_or_a_list_of_those():
    assert [fleet_report.serial_problem(v) for v in (1, "3", "25%", "100%", 0, [1, "5", "50%"])] == [""] * 6
    for wrong in ("12.5%", "abc", -1, "150%", [1, "x"], True):
        assert fleet_report.serial_problem(wrong).startswith("deadline_workers_serial must be a number of hosts, a whole percentage ('25%')")
    assert fleet_report.settings_problem("25%", "5%") == ""
    assert fleet_report.settings_problem("x", "y") == (
        "deadline_workers_serial must be a number of hosts, a whole percentage ('25%') or a list of those, not 'x'; "
        "deadline_workers_max_fail_percentage must be a percentage from 0 to 100 (10, 2.5 or '10%'), not 'y'"
    )


def test_the_check_before_a_run_says_why_it_must_not_start_and_that_it_is_not_the_workers_fault():
    check = FilterModule().filters()["_fleet_check"]
    assert check(["w1", "w2"], pattern="render_nodes", serial="25%", max_fail_percentage=10, host="localhost") == ""
    none = check([], pattern="render_nodes", limit="license-server", host="license-server")
    assert none.startswith("no worker selected: the host pattern 'render_nodes' with --limit 'license-server' selects no host")
    assert "only because" not in none  # not a worker: it is not blamed for anything
    two = check(["w2", "w1"], pattern="render_nodes", one=True, host="w1")
    assert two == ("the self-test runs on one worker, and this run selects 2 (w1, w2): pick one with --limit <host>."
                   " (the run fails on w1 only because it checks this there: nothing ran on it)")
    assert check(["w1"], pattern="p", serial="12.5%", host="localhost").startswith("deadline_workers_serial must be")


def test_a_report_not_written_fails_the_run_beside_the_workers_never_instead_of_them():
    filters = FilterModule().filters()
    run = {"workers": 2, "selected": ["w1", "w2"], "lines": ["2 hosts: 1 fixed, 1 refused"], "failing": {"w2": "refused: ENV_OVERRIDE"},
           "report_path": "/srv/missing/r.csv"}
    written = {"failed": True, "msg": "Destination directory /srv/missing does not exist"}
    problem = "the report could not be written to /srv/missing/r.csv: Destination directory /srv/missing does not exist"
    assert filters["_fleet_problem"](run, written, "localhost") == problem
    # on localhost the marking play fails it; localhost is never added to the inventory (a second localhost)
    assert filters["_fleet_failing"](run, written, "localhost") == [{"host": "w2", "cause": "refused: ENV_OVERRIDE"}]
    # a worker that summarized the run (--limit without localhost) carries it, saying it is the run's
    assert filters["_fleet_failing"](run, written, "w1") == [
        {"host": "w2", "cause": "refused: ENV_OVERRIDE"}, {"host": "w1", "cause": f"{problem} (the run's failure, not w1's: its summary ran there)"},
    ]
    assert filters["_fleet_failing"](run, written, "w2")[0]["cause"].startswith(f"refused: ENV_OVERRIDE | {problem}")
    for fine in ({"changed": True}, {"skipped": True}, {}):
        assert filters["_fleet_problem"](run, fine, "localhost") == ""
        assert filters["_fleet_failing"](run, fine, "w1") == [{"host": "w2", "cause": "refused: ENV_OVERRIDE"}]
    none = {"workers": 0, "lines": ["no worker selected: the host pattern 'p' selects no host of the inventory"]}
    assert filters["_fleet_problem"](none, {}, "license-server").startswith("no worker selected")


def test_counts_of_one_host_read_as_one():
    summary = fleet_report.converge_summary({"w1": outcome("failed", error="boom", cause="boom"), "w2": None},
                                            {"failed": 1, "run": 1, "max_fail_percentage": 10.0, "hosts": ["w1"]})
    lines = fleet_report.converge_lines(summary)
    assert "the waves stopped: 1 of 1 host run failed, more than 10% (deadline_workers_max_fail_percentage); 1 not run" in lines
    assert lines[-1].startswith("1 of 2 hosts refused, failed, not ready or unreachable: ")
    alone = fleet_report.converge_lines(fleet_report.converge_summary({"w1": outcome("failed", error="boom", cause="boom")}))
    assert alone[-1].startswith("1 of 1 host refused, failed, not ready or unreachable: ")
