# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/converge.yml, diagnose.yml and selftest.yml on simulated fleets, as a new user runs them:
a group not called deadline_workers, --limit with or without localhost, failing and refused hosts,
waves, the failure threshold, check mode, reports and what AWX reads (the recap, set_stats)."""

from __future__ import annotations

import copy
import csv
import io
import json
import re
import shutil
from pathlib import Path

import pytest
import simworker
import yaml

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils import _fleet as fleet_report

PLAYBOOKS = simworker.REPO_ROOT / "playbooks"
FLEET = {
    "worker-01": "installer-default",
    "worker-02": "localized-bom",
    "worker-03": "legacy-keys",
    "worker-04": "env-override",
    "worker-05": "old-agent",
}
FIXABLE = ("worker-01", "worker-02", "worker-03")
AGENT_SID = "S-1-5-21-3623811015-3361044348-30300820-1001"
RENDER = "render_nodes"


def example(name: str) -> dict:
    if name == "installer-default":
        return simworker.example_state()
    if name == "dropping":  # the connection drops at its worker.toml write: the host stays consistent, unreachable
        state = simworker.example_state()
        state["faults"] = {"fail_next": ["write_file"]}
        return state
    return yaml.safe_load((simworker.EXAMPLES / f"{name}.yml").read_text(encoding="utf-8"))


def busy(name: str, **session) -> dict:
    state = example(name)
    state["services"]["DeadlineWorker"]["sessions"] = [{"id": "session-1", **session}]
    return state


def fleet(tmp_path: Path, hosts: dict[str, str | dict] | None = None, group: str = "deadline_workers", others=None):
    hosts = FLEET if hosts is None else hosts
    paths = {
        host: simworker.save_state(tmp_path / f"{host}.yml", copy.deepcopy(kind) if isinstance(kind, dict) else example(
            "installer-default" if kind == "failing" else kind))
        for host, kind in hosts.items()
    }
    for host, kind in hosts.items():
        if kind == "failing":  # every call fails (its state file is gone): the role fails on it, before any change
            paths[host].unlink()
    return simworker.write_inventory(tmp_path, paths, group=group, others=others), paths


def new_users_fleet(tmp_path: Path):
    """Eight workers in the farm's own group, beside a host that is no worker: render-06 drops its
    connection during its changes, render-07 and render-08 are refused (an environment override, an old agent)."""
    hosts = {f"render-0{n}": "installer-default" for n in range(1, 6)}
    hosts |= {"render-06": "dropping", "render-07": "env-override", "render-08": "old-agent"}
    return fleet(tmp_path, hosts, group=RENDER, others={"licensing": ["license-server"]})


def run(playbook: str, inventory: Path, *args: str, cwd: Path | None = None, **env: str):
    return simworker.run_playbook(PLAYBOOKS / playbook, inventory, *args, env=simworker.ansible_env(**env), cwd=cwd)


def strip_calls(state: dict) -> dict:
    state = copy.deepcopy(state)
    for key in ("calls", "calls_total", "faults"):
        state.pop(key, None)
    return state


def is_converged(state: dict) -> bool:
    admins = state["accounts"]["S-1-5-32-544"].get("members") or []
    return AGENT_SID not in admins and state["services"]["DeadlineWorker"]["restarts"] == 1


def untouched(path: Path) -> bool:
    return "calls_total" not in simworker.load_state(path)


def failed_hosts(result) -> set[str]:
    return {host for host, counts in simworker.recap(result).items() if counts["failed"] or counts["unreachable"]}


def fatal(result, host: str) -> str:
    """The failure the run ends the host with, and its cause: the last one the host shows (a task whose
    failure was ignored or rescued may show one before it)."""
    lines = [line for line in result.stdout.splitlines() if line.startswith(f"fatal: [{host}]: FAILED!") and '"msg"' in line]
    assert lines, result.stdout[-4000:]
    return lines[-1]


def summary_lines(result, task: str = "Show the summary of the run") -> list[str]:
    """The msg list the summary task printed."""
    block = result.stdout.split(f"TASK [{task}", 1)[1]
    return json.loads(block[block.index("{") : block.index("\n}\n") + 2])["msg"]


# --- a new user's fleet: its own group, --limit, a failing and a refused host --------------------


def test_a_new_users_fleet_gets_a_truthful_recap_summary_and_report_with_a_limit(tmp_path):
    inventory, paths = new_users_fleet(tmp_path)
    (tmp_path / "reports").mkdir()
    limit = "render-05,render-06,render-07,render-08"
    result = run(
        "converge.yml", inventory, "-e", f"deadline_workers_hosts={RENDER}", "--limit", limit,
        "-e", "deadline_workers_max_fail_percentage=50", "-e", "deadline_converge_report=reports/converge.csv",
        cwd=tmp_path,
    )
    assert result.returncode != 0
    # the recap blames exactly the hosts the run refused or could not fix, each with its cause
    assert failed_hosts(result) == {"render-06", "render-07", "render-08"}
    assert "unreachable during writing worker.toml: " in fatal(result, "render-06") and "fault fail_next" in fatal(result, "render-06")
    assert "ENV_OVERRIDE: DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER=false" in fatal(result, "render-07")
    assert "AGENT_VERSION_UNSUPPORTED: the worker agent is 0.27.1" in fatal(result, "render-08")
    assert is_converged(simworker.load_state(paths["render-05"]))
    assert all(untouched(paths[f"render-0{n}"]) for n in range(1, 5))  # outside the limit
    assert "license-server" not in simworker.recap(result)
    # the summary covers exactly the hosts of the run, names the fixed one and points at the recap
    lines = summary_lines(result)
    assert lines[0] == "4 hosts: 1 fixed, 2 refused, 1 unreachable"
    assert lines[lines.index("fixed (1):") + 1] == "  render-05"
    assert "  render-07: ENV_OVERRIDE" in lines and "  render-08: AGENT_VERSION_UNSUPPORTED" in lines
    assert "3 of 4 hosts refused, failed, not ready or unreachable: each is marked failed in the recap below, with its cause" in lines
    # the report is relative to where ansible-playbook runs, not to the playbook, and its path is printed
    report = tmp_path / "reports" / "converge.csv"
    assert lines[-1] == f"report written to {report}"
    rows = {r["host"]: r for r in csv.DictReader(io.StringIO(report.read_text(encoding="utf-8")))}
    assert {h: r["status"] for h, r in rows.items()} == {"render-05": "fixed", "render-06": "unreachable", "render-07": "refused", "render-08": "refused"}
    assert not (PLAYBOOKS / "reports").exists()
    assert "Could not match supplied host pattern" not in result.stdout + result.stderr
    assert "Assertion failed" not in result.stdout and "deadline_workers__" not in result.stdout


def test_a_limit_that_includes_localhost_covers_the_same_hosts_without_warnings(tmp_path):
    inventory, paths = new_users_fleet(tmp_path)
    result = run("converge.yml", inventory, "-e", f"deadline_workers_hosts={RENDER}", "--limit", "render-07,render-08,localhost")
    assert result.returncode != 0
    assert failed_hosts(result) == {"render-07", "render-08"}
    assert summary_lines(result)[0] == "2 hosts: 2 refused"
    assert "[WARNING]" not in result.stdout + result.stderr, result.stderr
    assert all(untouched(paths[f"render-0{n}"]) for n in range(1, 7))


def test_diagnose_with_a_limit_gates_exactly_the_limited_hosts(tmp_path):
    inventory, paths = new_users_fleet(tmp_path)
    result = run(
        "diagnose.yml", inventory, "-e", f"deadline_workers_hosts={RENDER}", "--limit", "render-07,render-08",
        "-e", "deadline_diagnose_fail_unless_ready=true", "-e", "deadline_diagnose_report=diagnosis.json", cwd=tmp_path,
    )
    assert result.returncode != 0
    assert failed_hosts(result) == {"render-07", "render-08"}
    assert fatal(result, "render-07").count("not ready for WORKER_AGENT_USER jobs: ") == 1
    assert "ENV_OVERRIDE" in fatal(result, "render-07") and "Converge refuses it." in fatal(result, "render-07")
    lines = summary_lines(result)
    assert lines[0] == "2 hosts: 0 ready, 2 not ready" and lines[-1] == f"report written to {tmp_path / 'diagnosis.json'}"
    assert json.loads((tmp_path / "diagnosis.json").read_text(encoding="utf-8"))["total"] == 2
    for host, path in paths.items():
        assert strip_calls(simworker.load_state(path)) == strip_calls(example("dropping" if host == "render-06" else {
            "render-07": "env-override", "render-08": "old-agent"}.get(host, "installer-default"))), host


@pytest.mark.parametrize("playbook", ["converge.yml", "diagnose.yml", "selftest.yml"])
@pytest.mark.parametrize(
    "selection",
    [("-e", "deadline_workers_hosts=render_farm"), ("--limit", "license-server"), ("--limit", "license-server,localhost")],
    ids=["pattern", "limit", "limit-with-localhost"],
)
def test_every_playbook_fails_loudly_when_it_selects_no_worker(tmp_path, playbook, selection):
    inventory, paths = fleet(tmp_path, {"render-01": "installer-default"}, group=RENDER, others={"licensing": ["license-server"]})
    pattern = () if selection[0] == "-e" else ("-e", f"deadline_workers_hosts={RENDER}")
    result = run(playbook, inventory, *pattern, *selection)
    assert result.returncode != 0, result.stdout[-3000:]
    assert "no worker selected: the host pattern" in result.stdout, result.stdout[-3000:]
    assert untouched(paths["render-01"])
    # the same words from every playbook, before any worker is read
    pattern, limit = ("render_farm", "") if selection[0] == "-e" else (RENDER, selection[1])
    assert fleet_report.no_worker_message(pattern, limit) in result.stdout
    assert "PLAY [Summarize" not in result.stdout  # the run stopped at its check


def test_a_limit_that_matches_no_host_at_all_fails(tmp_path):
    inventory, paths = fleet(tmp_path, {"render-01": "installer-default"}, group=RENDER)
    for playbook in ("converge.yml", "diagnose.yml", "selftest.yml"):
        result = run(playbook, inventory, "-e", f"deadline_workers_hosts={RENDER}", "--limit", "render-99")
        assert result.returncode != 0, playbook  # ansible-playbook itself refuses
    assert untouched(paths["render-01"])


# --- waves, the failure threshold, refused hosts ------------------------------------------------


def test_the_threshold_stops_the_waves_but_never_the_summary_stats_or_report(tmp_path):
    inventory, paths = fleet(tmp_path, {"render-01": "failing", "render-02": "installer-default", "render-03": "installer-default"}, group=RENDER)
    result = run(
        "converge.yml", inventory, "-e", f"deadline_workers_hosts={RENDER}", "-e", "deadline_workers_serial=1",
        "-e", "deadline_converge_report=converge.json", cwd=tmp_path, ANSIBLE_SHOW_CUSTOM_STATS="1",
    )  # the default threshold: 10% of the hosts run so far
    assert result.returncode != 0
    assert result.stdout.count("PLAY [Converge Deadline Cloud workers") == 1  # no further wave
    assert untouched(paths["render-02"]) and untouched(paths["render-03"])
    assert failed_hosts(result) == {"render-01"}  # the host that failed, and only it
    assert "render-01.yml does not exist" in fatal(result, "render-01")
    lines = summary_lines(result)
    assert lines[0] == "3 hosts: 1 failed, 2 not run"
    assert lines[1] == "the waves stopped: 1 of 1 host run failed, more than 10% (deadline_workers_max_fail_percentage); 2 not run"
    summary = json.loads((tmp_path / "converge.json").read_text(encoding="utf-8"))
    assert summary["stopped"]["not_run"] == ["render-02", "render-03"]
    stats = result.stdout.split("CUSTOM STATS", 1)[1]
    assert re.search(r"deadline_converge_run_[0-9a-f]{12}", stats) and '"failed": 1' in stats.replace("\n", "")


def test_a_threshold_written_like_the_serial_stops_the_waves_as_a_number_would(tmp_path):
    hosts = {"render-01": "installer-default", "render-02": "failing", "render-03": "installer-default"}
    inventory, paths = fleet(tmp_path, hosts, group=RENDER)
    result = run(
        "converge.yml", inventory, "-e", f"deadline_workers_hosts={RENDER}", "-e", "deadline_workers_serial=1",
        "-e", "deadline_workers_max_fail_percentage=40%",
    )
    assert result.returncode != 0 and "Unexpected Exception" not in result.stdout + result.stderr
    assert result.stdout.count("PLAY [Converge Deadline Cloud workers") == 2  # 1 of 2 hosts failed: more than 40%
    assert failed_hosts(result) == {"render-02"} and untouched(paths["render-03"])
    assert summary_lines(result)[0] == "3 hosts: 1 fixed, 1 failed, 1 not run"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("deadline_workers_max_fail_percentage=five", "deadline_workers_max_fail_percentage must be a percentage from 0 to 100 (10, 2.5 or '10%'), not 'five'"),
        ("deadline_workers_max_fail_percentage=110", "deadline_workers_max_fail_percentage must be a percentage from 0 to 100"),
        ("deadline_workers_serial=12.5%", "deadline_workers_serial must be a number of hosts, a whole percentage ('25%') or a list of those, not '12.5%'"),
    ],
    ids=["threshold-text", "threshold-over-100", "serial-fraction"],
)
def test_a_wave_size_or_threshold_that_cannot_be_used_stops_the_run_before_any_host_is_read(tmp_path, setting, message):
    inventory, paths = fleet(tmp_path, {"render-01": "installer-default", "render-02": "installer-default"}, group=RENDER)
    result = run("converge.yml", inventory, "-e", f"deadline_workers_hosts={RENDER}", "-e", setting)
    assert result.returncode != 0
    assert message in fatal(result, "localhost") and "Unexpected Exception" not in result.stdout + result.stderr
    assert "PLAY [Converge Deadline Cloud workers" not in result.stdout and all(untouched(path) for path in paths.values())
    # with --limit leaving localhost out, the first worker shows the run's failure, and says it is not its own
    limited = run("converge.yml", inventory, "-e", f"deadline_workers_hosts={RENDER}", "-e", setting, "--limit", "render-02,render-01")
    assert f"{message}" in fatal(limited, "render-01") and "(the run fails on render-01 only because it checks this there" in fatal(limited, "render-01")
    assert all(untouched(path) for path in paths.values())


def test_under_the_free_strategy_the_threshold_waits_for_every_host_of_the_wave(tmp_path):
    """A host that fails at once must not end its wave while the others are mid-change (the free strategy
    of ansible.cfg or ANSIBLE_STRATEGY): they finish, and count as what they became."""
    hosts = {"render-01": "failing", "render-02": busy("installer-default", ends_after_s=3), "render-03": "installer-default",
             "render-04": "installer-default"}
    inventory, paths = fleet(tmp_path, hosts, group=RENDER)
    result = run(
        "converge.yml", inventory, "-e", f"deadline_workers_hosts={RENDER}", "-e", "deadline_workers_serial=3",
        "-e", "deadline_worker_agent_user_idle_timeout=60", "-e", "deadline_worker_agent_user_idle_poll=1", ANSIBLE_STRATEGY="free",
    )
    assert result.returncode != 0
    assert failed_hosts(result) == {"render-01"}
    assert is_converged(simworker.load_state(paths["render-02"])) and is_converged(simworker.load_state(paths["render-03"]))
    lines = summary_lines(result)
    assert lines[0] == "4 hosts: 2 fixed, 1 failed, 1 not run", lines  # 1 of 3 failed: no second wave
    assert untouched(paths["render-04"])


def test_failures_under_the_threshold_let_every_wave_run(tmp_path):
    hosts = {"render-01": "failing", "render-02": "installer-default", "render-03": "installer-default"}
    inventory, paths = fleet(tmp_path, hosts, group=RENDER)
    result = run(
        "converge.yml", inventory, "-e", f"deadline_workers_hosts={RENDER}", "-e", "deadline_workers_serial=1",
        "-e", "deadline_workers_max_fail_percentage=100",
    )
    assert result.returncode != 0
    assert result.stdout.count("PLAY [Converge Deadline Cloud workers") == 3
    assert is_converged(simworker.load_state(paths["render-02"])) and is_converged(simworker.load_state(paths["render-03"]))
    assert failed_hosts(result) == {"render-01"}
    lines = summary_lines(result)
    assert lines[0] == "3 hosts: 2 fixed, 1 failed"
    # without AWS credentials (or boto3) the host's own view decides, and the run says so once
    assert len([line for line in lines if line.startswith("busy or idle: the Deadline Cloud API was not asked")]) == 1


def test_refused_hosts_never_stop_the_waves_and_a_pending_restart_is_no_failure(tmp_path):
    hosts = {
        "render-01": "env-override",
        "render-02": "old-agent",
        "render-03": busy("installer-default"),  # runs a render until the service stops
        "render-04": "installer-default",
    }
    inventory, paths = fleet(tmp_path, hosts, group=RENDER)
    result = run(
        "converge.yml", inventory, "-e", f"deadline_workers_hosts={RENDER}", "-e", "deadline_workers_serial=1",
        "-e", "deadline_workers_max_fail_percentage=0", "-e", "deadline_worker_agent_user_idle_timeout=0",
    )
    assert result.returncode != 0
    assert result.stdout.count("PLAY [Converge Deadline Cloud workers") == 4  # every wave ran
    assert failed_hosts(result) == {"render-01", "render-02"}
    lines = summary_lines(result)
    assert lines[0] == "4 hosts: 1 fixed, 1 restart pending, 2 refused"
    assert any(line.startswith("  render-03: busy: 1 session") for line in lines), lines
    state = simworker.load_state(paths["render-03"])
    assert state["services"]["DeadlineWorker"]["restarts"] == 0 and not state["services"]["DeadlineWorker"].get("interrupted_sessions")
    assert is_converged(simworker.load_state(paths["render-04"]))


def test_waiting_for_an_idle_agent_shows_progress_at_each_look(tmp_path):
    inventory, paths = fleet(tmp_path, {"render-01": busy("installer-default", ends_after_s=3)}, group=RENDER)
    result = run(
        "converge.yml", inventory, "-e", f"deadline_workers_hosts={RENDER}",
        "-e", "deadline_worker_agent_user_idle_timeout=60", "-e", "deadline_worker_agent_user_idle_poll=1",
    )
    assert result.returncode == 0, result.stdout[-3000:]
    waits = re.findall(
        r"^render-01: DeadlineWorker runs 1 session\(s\) \(session-1\); waiting for them to end before the restart, (\d+) s left, next look in 1 s$",
        result.stdout, re.MULTILINE,
    )
    polls = simworker.load_state(paths["render-01"])["calls"]["control_service"]
    assert 2 <= len(waits) == polls - 1, result.stdout[-3000:]  # one line per look at the busy agent
    assert [int(w) for w in waits] == sorted((int(w) for w in waits), reverse=True) and int(waits[0]) <= 60
    assert summary_lines(result)[0] == "1 host: 1 fixed"


def test_an_interrupt_says_where_sessions_were_interrupted(tmp_path):
    inventory, _paths = fleet(tmp_path, {"render-01": "installer-default", "render-02": busy("installer-default")}, group=RENDER)
    result = run(
        "converge.yml", inventory, "-e", f"deadline_workers_hosts={RENDER}", "-e", "deadline_worker_agent_user_idle_timeout=0",
        "-e", "deadline_worker_agent_user_when_busy=interrupt",
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "sessions interrupted: 1 (render-02: 1)" in summary_lines(result)


def test_restart_when_never_says_who_restarts_and_a_list_passed_as_text_says_how_to_pass_a_list(tmp_path):
    inventory, paths = fleet(tmp_path, {"render-01": "installer-default"}, group=RENDER)
    result = run("converge.yml", inventory, "-e", f"deadline_workers_hosts={RENDER}", "-e", "deadline_worker_agent_user_restart_when=never")
    assert result.returncode == 0, result.stdout[-3000:]  # a pending restart is not a failure
    lines = summary_lines(result)
    assert lines[0] == "1 host: 1 restart pending"
    assert lines[lines.index("restart pending:") + 1].startswith(
        "  render-01: deadline_worker_agent_user_restart_when is never (or deadline_worker_agent_user_restart is false): restart DeadlineWorker yourself"
    )
    assert "not allowed" not in result.stdout
    text = run("converge.yml", inventory, "-e", f"deadline_workers_hosts={RENDER}", "-e", 'deadline_worker_agent_user_rights=["SeServiceLogonRigth"]')
    assert text.returncode != 0
    cause = fatal(text, "render-01")
    # ansible-core before 2.19 turns the text into a list itself when the role's variables are templated
    assert "deadline_worker_agent_user_rights must be a list of strings, not the text" in cause or "did you mean SeServiceLogonRight?" in cause
    assert "[[" not in cause
    assert "filter plugin" not in text.stdout
    typo = run("converge.yml", inventory, "-e", f"deadline_workers_hosts={RENDER}", "-e", '{"deadline_worker_agent_user_rights": ["SeServiceLogonRigth"]}')
    assert "unknown user right SeServiceLogonRigth (did you mean SeServiceLogonRight?)" in fatal(typo, "render-01")
    assert simworker.load_state(paths["render-01"])["calls_total"] == 4  # the first run's (no restart); none from the refused variables


@pytest.mark.parametrize("playbook", ["converge.yml", "diagnose.yml"])
def test_a_report_that_cannot_be_written_fails_the_run_and_every_failing_worker_is_still_marked(tmp_path, playbook):
    hosts = {"render-01": "installer-default", "render-02": "env-override", "render-03": "failing"}
    inventory, _paths = fleet(tmp_path, hosts, group=RENDER)
    report = tmp_path / "no-such-folder" / "report.csv"
    variable = "deadline_converge_report" if playbook == "converge.yml" else "deadline_diagnose_report"
    common = ("-e", f"deadline_workers_hosts={RENDER}", "-e", f"{variable}={report}", "-e", "deadline_workers_max_fail_percentage=100",
              "-e", "deadline_diagnose_fail_unless_ready=true")
    result = run(playbook, inventory, *common)
    assert result.returncode != 0
    # the workers are marked as without the report, and the run fails for the report on localhost
    marked = {"render-02", "render-03"} | ({"render-01"} if playbook == "diagnose.yml" else set())  # diagnose: not ready yet
    assert failed_hosts(result) == marked | {"localhost"}
    assert f"the report could not be written to {report}: Destination directory" in fatal(result, "localhost")
    assert summary_lines(result)[-1].startswith(f"report NOT written to {report}: ")
    # --limit without localhost: the host that summarized the run carries the run's failure, saying so
    limited = run(playbook, inventory, *common, "--limit", "render-03,render-02")
    assert failed_hosts(limited) == {"render-02", "render-03"}
    cause = fatal(limited, "render-02")
    assert "ENV_OVERRIDE" in cause and f" | the report could not be written to {report}" in cause
    assert cause.endswith("(the run's failure, not render-02's: its summary ran there)\"}")
    # a report written from a worker (no localhost in the limit) is no change of that worker
    written = run(playbook, inventory, "-e", f"deadline_workers_hosts={RENDER}", "-e", f"{variable}=ok.csv", "--limit", "render-02", cwd=tmp_path)
    assert (tmp_path / "ok.csv").is_file() and simworker.recap(written)["render-02"]["changed"] == 0


def test_check_mode_says_would_fix_and_would_wait_and_writes_its_report(tmp_path):
    hosts = {"render-01": "installer-default", "render-02": busy("installer-default"), "render-03": "env-override"}
    inventory, paths = fleet(tmp_path, hosts, group=RENDER)
    before = {host: strip_calls(simworker.load_state(path)) for host, path in paths.items()}
    result = run("converge.yml", inventory, "-e", f"deadline_workers_hosts={RENDER}", "--check", "-e", "deadline_converge_report=plan.json", cwd=tmp_path)
    assert result.returncode != 0  # render-03 would be refused: check mode says so as the run would
    assert failed_hosts(result) == {"render-03"}
    lines = summary_lines(result)
    assert lines[0] == "3 hosts: 1 would be fixed, 1 would wait for idle, 1 refused"
    assert lines[1] == "check mode: nothing was changed; this is what the run would do"
    assert any(line.startswith("  render-02: busy: 1 session running; converge waits up to 600 s") for line in lines), lines
    summary = json.loads((tmp_path / "plan.json").read_text(encoding="utf-8"))
    assert summary["check_mode"] is True and summary["counts"]["would_fix"] == 1
    assert {host: strip_calls(simworker.load_state(path)) for host, path in paths.items()} == before


# --- diagnose ------------------------------------------------------------------------------------


def test_diagnose_is_read_only_names_every_host_and_says_converge_waits_for_a_busy_one(tmp_path):
    hosts = dict(FLEET) | {"worker-06": busy("installer-default")}
    inventory, paths = fleet(tmp_path, hosts)
    report = tmp_path / "report.json"
    result = run("diagnose.yml", inventory, "-e", f"deadline_diagnose_report={report}")
    assert result.returncode == 0, result.stdout[-4000:]
    for host, path in paths.items():
        state = simworker.load_state(path)
        assert strip_calls(state) == strip_calls(example(hosts[host]) if isinstance(hosts[host], str) else hosts[host]), host
        assert state["calls_total"] == 1
    assert "BLOCKER ENV_OVERRIDE:" in result.stdout and "BLOCKER AGENT_VERSION_UNSUPPORTED:" in result.stdout
    assert "busy: 1 session running; converge waits up to 600 s for them to end before it restarts the agent" in result.stdout
    lines = summary_lines(result)
    assert lines[0] == "6 hosts: 0 ready, 6 not ready"
    at = lines.index("  AGENT_OPT_IN_MISSING on 6 hosts, converge fixes it on 4, leaves it on 2:")
    assert lines[at + 1] == "    worker-01, worker-02, worker-03, worker-04, worker-05, worker-06"  # every host, never "and 1 more"
    assert "busy now (1), converge waits for their sessions to end before it restarts the agent:" in lines
    summary = json.loads(report.read_text(encoding="utf-8"))
    counts = {f["id"]: f["count"] for f in summary["findings"]}
    assert counts["AGENT_OPT_IN_MISSING"] == 6 and counts["ENV_OVERRIDE"] == 1 and counts["CONFIG_ENCODING"] == 1


def test_diagnose_writes_csv_lists_hosts_without_a_reading_and_works_under_the_free_strategy(tmp_path):
    inventory, paths = fleet(tmp_path, {"worker-01": "installer-default", "worker-02": "installer-default", "worker-04": "env-override"})
    paths["worker-02"].unlink()  # a host that cannot be read
    result = run("diagnose.yml", inventory, "-e", "deadline_diagnose_report=report.csv", cwd=tmp_path, ANSIBLE_STRATEGY="free")
    assert result.returncode == 0, result.stdout[-4000:]
    assert "3 hosts: 0 ready, 2 not ready, 1 without a reading" in result.stdout and "without a reading:" in result.stdout
    rows = list(csv.DictReader(io.StringIO((tmp_path / "report.csv").read_text(encoding="utf-8"))))
    assert [r["status"] for r in rows if r["host"] == "worker-02"] in (["error"], ["unreachable"])
    action = {(r["host"], r["finding"]): r["converge"] for r in rows}
    assert action[("worker-04", "ENV_OVERRIDE")] == "refuses" and action[("worker-01", "AGENT_USER_IS_ADMIN")] == "fixes"
    fix = {(r["host"], r["finding"]): r["fix"] for r in rows}
    # with the variable that turns the opt-in off, the opt-in's fix removes the variable first
    assert fix[("worker-04", "AGENT_OPT_IN_MISSING")].startswith("Remove DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER=... from the Environment value")
    assert fix[("worker-01", "AGENT_OPT_IN_MISSING")].startswith("Set [os] run_jobs_as_agent_user = true in worker.toml")


def test_diagnose_names_a_role_variable_it_cannot_use_as_the_hosts_cause(tmp_path):
    inventory, paths = fleet(tmp_path, {"render-01": "installer-default", "render-02": "installer-default"}, group=RENDER)
    result = run(
        "diagnose.yml", inventory, "-e", f"deadline_workers_hosts={RENDER}", "--limit", "render-01",
        "-e", '{"deadline_worker_agent_user_rights": ["SeServiceLogonRigth"]}', "-e", "deadline_diagnose_fail_unless_ready=true",
    )
    assert result.returncode != 0
    typo = "unknown user right SeServiceLogonRigth (did you mean SeServiceLogonRight?)"
    assert typo in fatal(result, "render-01") and "the agent's verdict is not ready" not in result.stdout
    lines = summary_lines(result)
    assert lines[0] == "1 host: 0 ready, 0 not ready, 1 without a reading"
    assert any(line.startswith("  render-01: deadline_worker_agent_user_rights: " + typo) for line in lines), lines
    assert untouched(paths["render-01"]) and untouched(paths["render-02"])  # no call: the variable was refused first


def test_diagnose_shows_what_only_the_plan_refuses_a_domain_group_nested_in_administrators(tmp_path):
    inventory, _paths = fleet(tmp_path, {"render-01": simworker.domain_state(admin_through=simworker.RENDER_ADMINS)}, group=RENDER)
    result = run(
        "diagnose.yml", inventory, "-e", f"deadline_workers_hosts={RENDER}", "-e", "deadline_diagnose_report=report.csv",
        "-e", "deadline_diagnose_fail_unless_ready=true", cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "BLOCKER REMOVAL_REFUSED: refusing to remove CORP" in result.stdout  # the host's own lines
    lines = summary_lines(result)
    assert lines[lines.index("  REMOVAL_REFUSED on 1 host, converge refuses it:") + 1] == "    render-01"
    rows = list(csv.DictReader(io.StringIO((tmp_path / "report.csv").read_text(encoding="utf-8"))))
    assert [(r["severity"], r["converge"]) for r in rows if r["finding"] == "REMOVAL_REFUSED"] == [("blocker", "refuses")]
    assert "REMOVAL_REFUSED: refusing to remove CORP" in fatal(result, "render-01") and "Converge refuses it." in fatal(result, "render-01")


@pytest.mark.parametrize("playbook", ["converge.yml", "diagnose.yml"])
def test_a_worker_unreachable_over_ssh_says_why_in_the_summary_report_and_recap(tmp_path, playbook):
    if shutil.which("ssh") is None:
        pytest.skip("no ssh client on this machine: the ssh connection cannot be tried")
    inventory, _paths = fleet(tmp_path, {"render-01": "installer-default"}, group=RENDER)
    document = yaml.safe_load(inventory.read_text(encoding="utf-8"))
    # nothing listens on port 1: the connection is refused at once
    document["all"]["children"][RENDER]["hosts"]["render-09"] = {
        "ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_ssh_common_args": "-o ConnectTimeout=5",
    }
    inventory.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    variable = "deadline_converge_report" if playbook == "converge.yml" else "deadline_diagnose_report"
    result = run(playbook, inventory, "-e", f"deadline_workers_hosts={RENDER}", "-e", f"{variable}=report.json",
                 "-e", "deadline_workers_max_fail_percentage=100", "-e", "deadline_diagnose_fail_unless_ready=true", cwd=tmp_path)
    assert result.returncode != 0
    cause = "ssh: connect to host 127.0.0.1 port 1"
    assert "censored" not in result.stdout, result.stdout[-4000:]
    assert cause in fatal(result, "render-09")
    assert any(line.startswith("  render-09: ") and cause in line for line in summary_lines(result))
    assert cause in (tmp_path / "report.json").read_text(encoding="utf-8")


# --- converge: fixes what it can, budgets --------------------------------------------------------


def test_converge_fixes_every_host_it_can_while_others_are_refused(tmp_path):
    inventory, paths = fleet(tmp_path)
    result = run("converge.yml", inventory)
    assert result.returncode != 0  # two hosts were refused
    assert failed_hosts(result) == {"worker-04", "worker-05"}
    for host in FIXABLE:
        assert is_converged(simworker.load_state(paths[host])), host
    for host in ("worker-04", "worker-05"):
        assert strip_calls(simworker.load_state(paths[host])) == strip_calls(example(FLEET[host])), f"{host} was changed"
    after = tmp_path / "after.json"
    assert run("diagnose.yml", inventory, "-e", f"deadline_diagnose_report={after}").returncode == 0
    summary = json.loads(after.read_text(encoding="utf-8"))
    assert sorted(h["host"] for h in summary["hosts"] if h["ready"]) == list(FIXABLE)


def executions(result, host: str) -> int:
    """Task executions on ``host`` from the PLAY RECAP: every result, skipped ones included (each costs a fork)."""
    counts = simworker.recap(result)[host]
    return counts["ok"] + counts["failed"] + counts["skipped"] + counts["unreachable"]


def test_converge_yml_stays_within_10_task_executions_per_host_and_5_on_a_rerun(tmp_path):
    inventory, paths = fleet(tmp_path, {f"render-0{n}": "installer-default" for n in range(1, 5)}, group=RENDER)
    first = run("converge.yml", inventory, "-e", f"deadline_workers_hosts={RENDER}")
    assert first.returncode == 0, first.stdout[-3000:]
    assert max(executions(first, f"render-0{n}") for n in range(1, 5)) <= 10, simworker.recap(first)
    assert all(simworker.load_state(p)["calls_total"] <= 5 for p in paths.values())
    again = run("converge.yml", inventory, "-e", f"deadline_workers_hosts={RENDER}")
    assert again.returncode == 0, again.stdout[-3000:]
    assert max(executions(again, f"render-0{n}") for n in range(1, 5)) <= 5, simworker.recap(again)
    assert all(simworker.load_state(p)["calls_total"] <= 6 for p in paths.values())  # one more call each
    assert summary_lines(again)[0] == "4 hosts: 4 already fine"
