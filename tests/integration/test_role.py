# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The role deadline_worker_agent_user on simulated workers, asserting on their state files."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import simworker
import yaml

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROLE = "deadline_cloud.cmf.deadline_worker_agent_user"
ADMINISTRATORS = "S-1-5-32-544"
AGENT_SID = "S-1-5-21-3623811015-3361044348-30300820-1001"
RENDER_ADMINS = "S-1-5-21-3623811015-3361044348-30300820-1003"
BASE_RIGHTS = ("SeServiceLogonRight", "SeAssignPrimaryTokenPrivilege", "SeIncreaseQuotaPrivilege")
RESULT = "deadline_worker_agent_user_result"


def variant(name: str) -> dict:
    """An example state of the collection (playbooks/simulated), or the shared installer state."""
    if name == "installer-default":
        return simworker.example_state()
    return yaml.safe_load((simworker.EXAMPLES / f"{name}.yml").read_text(encoding="utf-8"))


def run_role(tmp_path: Path, states: dict[str, dict], *args: str, how: str = "include_role", role_vars=None):
    """Run the role on simulated workers made from ``states``; return the run and the state paths."""
    paths = {}
    for host, state in states.items():
        path = tmp_path / f"{host}.yml"
        if not path.exists():
            simworker.save_state(path, state)
        paths[host] = path
    inventory = simworker.write_inventory(tmp_path, paths)
    role_vars = role_vars or {}
    if how == "roles":
        play = {"roles": [{"role": ROLE, "vars": role_vars}] if role_vars else [ROLE]}
        tasks = [simworker.dump_task(tmp_path, RESULT)]
    else:
        step = {"name": "The role", f"ansible.builtin.{how}": {"name": ROLE}}
        if role_vars:
            step["vars"] = role_vars
        # the fact is there for a later task even when the role failed on the host
        tasks = [{"name": "Converge", "block": [step], "always": [simworker.dump_task(tmp_path, RESULT)]}]
        play = {}
    playbook = simworker.write_playbook(tmp_path, tasks, name=f"{how}.yml", **play)
    run = simworker.run_playbook(playbook, inventory, *args, env=simworker.ansible_env())
    return run, paths


def state_of(path: Path) -> dict:
    return simworker.load_state(path)


def without_calls(state: dict) -> dict:
    state = copy.deepcopy(state)
    for key in ("calls", "calls_total", "faults"):
        state.pop(key, None)
    return state


def worker_toml(state: dict) -> dict:
    data = simworker.file_bytes(state)
    assert data is not None
    assert not data.startswith(b"\xef\xbb\xbf"), "worker.toml keeps a BOM"
    return tomllib.loads(data.decode("utf-8"))


def in_administrators(state: dict, sid: str = AGENT_SID) -> bool:
    return sid in (state["accounts"][ADMINISTRATORS].get("members") or [])


def direct_rights(state: dict, sid: str = AGENT_SID) -> set[str]:
    return {right for right, holders in (state.get("rights") or {}).items() if sid in (holders or [])}


def assert_consistent(state: dict, needed: tuple[str, ...]) -> None:
    """What a run cut off anywhere must never leave behind."""
    if not in_administrators(state):
        missing = set(needed) - direct_rights(state)
        assert not missing, f"the account left Administrators without {missing}"
    data = simworker.file_bytes(state) or b""
    text = data.decode("utf-8-sig")
    os_table = tomllib.loads(text).get("os", {})
    assert not (os_table.get("run_jobs_as_agent_user") is True and "windows_job_user" in os_table), (
        "worker.toml holds the opt-in and a job user at once"
    )


def assert_converged(state: dict, needed: tuple[str, ...]) -> None:
    assert not in_administrators(state)
    assert set(needed) <= direct_rights(state)
    os_table = worker_toml(state)["os"]
    assert os_table["run_jobs_as_agent_user"] is True
    assert "windows_job_user" not in os_table and "impersonation" not in os_table
    assert state["services"]["DeadlineWorker"]["state"] == "running"


def recap_ok(run) -> None:
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


# --- converge, re-run, budgets -----------------------------------------------------------------


def executions(run, host: str) -> int:
    """Task executions on ``host`` from the PLAY RECAP: every result, skipped ones included (each
    costs a fork), less the test's own dump task."""
    line = next(x for x in run.stdout.splitlines() if x.startswith(f"{host} ") and "ok=" in x)
    counts = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}
    return counts["ok"] + counts["failed"] + counts["skipped"] + counts["unreachable"] - 1


def test_installer_state_converges_in_5_calls_and_reruns_in_1(tmp_path):
    run, paths = run_role(tmp_path, {"worker-01": variant("installer-default")}, how="roles")
    recap_ok(run)
    state = state_of(paths["worker-01"])
    assert state["calls_total"] <= 5, state["calls"]
    assert "read_file" not in state["calls"], "worker_toml read the file the first reading already had"
    assert state["calls"].get("read_agent_info") == 1, "the verification reading comes with the restart"
    assert executions(run, "worker-01") <= 10, run.stdout[-3000:]
    assert_converged(state, (*BASE_RIGHTS, "SeShutdownPrivilege"))
    assert state["services"]["DeadlineWorker"]["restarts"] == 1
    result = simworker.read_dump(tmp_path, RESULT, "worker-01")
    assert result["changed"] and result["restarted"] and result["ready"] is True
    assert result["status"] == "fixed" and result["verified_by"] == "reading after the restart"
    assert {f["id"] for f in result["findings_before"]} >= {"AGENT_OPT_IN_MISSING", "AGENT_USER_IS_ADMIN"}
    assert not [f for f in result["findings_after"] if f["severity"] in ("blocker", "security")]
    assert [g["sid"] for g in result["groups_left"]] == [ADMINISTRATORS]

    calls_before = state["calls_total"]
    again, _paths = run_role(tmp_path, {"worker-01": {}}, how="roles")
    recap_ok(again)
    assert "changed: [worker-01]" not in again.stdout  # (the dump task runs on localhost)
    state = state_of(paths["worker-01"])
    assert state["calls_total"] - calls_before == 1, state["calls"]
    assert executions(again, "worker-01") <= 5, again.stdout[-3000:]
    assert state["services"]["DeadlineWorker"]["restarts"] == 1
    result = simworker.read_dump(tmp_path, RESULT, "worker-01")
    assert result["changed"] is False and result["ready"] is True and result["verified_by"] == "first reading"
    assert result["status"] == "already_fine"


def test_check_mode_reports_every_change_and_makes_none(tmp_path):
    original = variant("legacy-keys")
    run, paths = run_role(tmp_path, {"worker-03": original}, "--check", "--diff")
    recap_ok(run)
    state = state_of(paths["worker-03"])
    assert without_calls(state) == without_calls(original)
    assert "control_service" not in state["calls"] and "write_file" not in state["calls"]
    assert state["calls_total"] == 1, state["calls"]  # the modules plan from the first reading
    result = simworker.read_dump(tmp_path, RESULT, "worker-03")
    assert result["check_mode"] is True and result["changed"] is True
    assert result["rights_added"] == ["SeIncreaseQuotaPrivilege"]  # shutdown_on_stop is false here
    assert [g["sid"] for g in result["groups_left"]] == [ADMINISTRATORS]
    assert result["worker_toml"]["changed"] is True
    assert result["worker_toml"]["previous"]["os"]["windows_job_user"] == "deadline-job-user"
    assert result["restarted"] is False  # nothing is restarted in check mode: the changes say what would be
    assert result["changes"] == [
        "would grant SeIncreaseQuotaPrivilege",
        "would leave Administrators",
        "would set [os] run_jobs_as_agent_user = true in worker.toml, without windows_job_user and impersonation",
        "would restart the service",
    ]
    assert result["ready"] is False  # as the host is now; the prediction is in findings_after
    assert result["verified_by"] == "prediction (check mode)"
    assert not [f for f in result["findings_after"] if f["severity"] == "blocker"]
    assert "+run_jobs_as_agent_user = true" in run.stdout  # the diff of worker.toml


# --- a run cut off at any remote call ----------------------------------------------------------

OPERATIONS = (
    "read_agent_info",
    "set_user_rights",
    "set_group_membership",
    "write_file",
    "control_service",
)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_run_cut_off_at_any_call_leaves_the_host_consistent_and_the_next_run_converges(tmp_path, operation):
    state = variant("legacy-keys")  # in Administrators, a job user and the removed impersonation key
    state["faults"] = {"fail_next": [operation]}
    run, paths = run_role(tmp_path, {"worker-03": state})
    assert run.returncode != 0, f"the fault at {operation} did not stop the run"
    assert "fault fail_next" in run.stdout
    cut = state_of(paths["worker-03"])
    assert_consistent(cut, BASE_RIGHTS)

    again, _paths = run_role(tmp_path, {"worker-03": {}})
    recap_ok(again)
    converged = state_of(paths["worker-03"])
    assert_converged(converged, BASE_RIGHTS)
    result = simworker.read_dump(tmp_path, RESULT, "worker-03")
    assert result["ready"] is True
    # the example is stopped (its impersonation key stops the agent): the next run starts it
    assert converged["services"]["DeadlineWorker"]["restarts"] == 1


def test_a_restart_cut_off_on_a_running_service_is_done_by_the_next_run(tmp_path):
    """The settings are on disk and the old agent still runs: nothing is left to change, but
    worker.toml is newer than the running process (CONFIG_NOT_LOADED), so the next run restarts it."""
    state = variant("installer-default")
    state["faults"] = {"fail_next": ["control_service"]}
    run, paths = run_role(tmp_path, {"worker-01": state})
    assert run.returncode != 0
    cut = state_of(paths["worker-01"])
    assert_consistent(cut, (*BASE_RIGHTS, "SeShutdownPrivilege"))
    assert cut["services"]["DeadlineWorker"]["restarts"] == 0

    again, _paths = run_role(tmp_path, {"worker-01": {}})
    recap_ok(again)
    after = state_of(paths["worker-01"])
    assert after["services"]["DeadlineWorker"]["restarts"] == 1
    assert_converged(after, (*BASE_RIGHTS, "SeShutdownPrivilege"))
    result = simworker.read_dump(tmp_path, RESULT, "worker-01")
    assert "CONFIG_NOT_LOADED" in {f["id"] for f in result["findings_before"]}
    assert result["ready"] is True and "CONFIG_NOT_LOADED" not in {f["id"] for f in result["findings_after"]}

    calls_before = after["calls_total"]
    third, _paths = run_role(tmp_path, {"worker-01": {}})
    recap_ok(third)
    settled = state_of(paths["worker-01"])
    assert settled["services"]["DeadlineWorker"]["restarts"] == 1  # now the agent runs what is on disk
    assert settled["calls_total"] - calls_before == 1


def test_force_restart_restarts_a_converged_worker(tmp_path):
    run, paths = run_role(tmp_path, {"worker-01": variant("installer-default")})
    recap_ok(run)
    forced, _paths = run_role(tmp_path, {"worker-01": {}}, role_vars={"deadline_worker_agent_user_force_restart": True})
    recap_ok(forced)
    assert state_of(paths["worker-01"])["services"]["DeadlineWorker"]["restarts"] == 2


# --- refusals ----------------------------------------------------------------------------------

# Domain-joined farms: Group Policy, administrators through domain groups, no domain controller.
ALL_SERVICES = "S-1-5-80-0"


def domain_refused_states() -> dict[str, dict]:
    no_dc = simworker.domain_state()
    no_dc["faults"] = {"domain_unreachable": True}
    unreadable_policy = simworker.domain_state()
    unreadable_policy["group_policy"] = {"error": "Access denied reading root\\rsop\\computer"}
    return {
        # a GPO owns 'Log on as a service' and leaves the account out: the next refresh takes the right
        "policy-logon": simworker.domain_state(policy={"SeServiceLogonRight": [ALL_SERVICES]}),
        # a baseline GPO gives 'Shut down the system' to Administrators: the right is lost outside it
        "policy-shutdown": simworker.domain_state(policy={"SeShutdownPrivilege": [ADMINISTRATORS, "S-1-5-32-551"]}),
        "policy-deny": simworker.domain_state(policy={"SeDenyServiceLogonRight": [simworker.DOMAIN_USERS]}),
        # directly in Administrators (the installer adds it) and through Domain Admins, nested there
        "domain-admins": simworker.domain_state(admin_through=simworker.DOMAIN_ADMINS),
        "no-dc": no_dc,
        "policy-unreadable": unreadable_policy,
    }


DOMAIN_CAUSE = {
    "policy-logon": ("RIGHT_OWNED_BY_POLICY", "ALL SERVICES (S-1-5-80-0) only", "(or a group it keeps) to 'log on as a service'"),
    "policy-shutdown": ("RIGHT_OWNED_BY_POLICY", "Shut down the system", "shutdown_on_stop = false"),
    "policy-deny": ("RIGHT_OWNED_BY_POLICY", "Domain Users", "(or its group named there) out of 'deny log on as a service'"),
    "domain-admins": ("REMOVAL_REFUSED", "Domain Admins, nested in it", "take the account out of CORP\\\\Domain Admins (or that group out of"),
    "no-dc": ("DOMAIN_UNREACHABLE", "cannot be read", "domain controller"),
    "policy-unreadable": ("GROUP_POLICY_UNREADABLE", "Access denied", "rsop"),
}


def refused_states() -> dict[str, dict]:
    no_service = variant("installer-default")
    del no_service["services"]["DeadlineWorker"]
    no_config = variant("installer-default")
    no_config["files"] = {}
    garbage = simworker.set_file_bytes(variant("installer-default"), b"[worker\nfarm_id = \n")
    no_account = variant("installer-default")
    no_account["services"]["DeadlineWorker"]["account"] = r".\ghost"
    unreadable_account = variant("installer-default")  # LsaOpenPolicy: access denied
    unreadable_account["faults"] = {"lsa_error": "0xC0000022"}
    disabled_service = variant("installer-default")
    disabled_service["services"]["DeadlineWorker"]["start_mode"] = "disabled"  # still running: a restart would stop it for good
    disabled_account = variant("installer-default")
    disabled_account["accounts"][AGENT_SID]["enabled"] = False
    local_system = variant("installer-default")
    local_system["accounts"]["S-1-5-18"] = {"name": "SYSTEM", "domain": "NT AUTHORITY", "type": "well_known"}
    local_system["services"]["DeadlineWorker"]["account"] = "LocalSystem"
    nested_admin = variant("installer-default")  # in Administrators directly and through its own group
    nested_admin["accounts"][RENDER_ADMINS] = {"name": "render-admins", "type": "group", "members": [AGENT_SID]}
    nested_admin["accounts"][ADMINISTRATORS]["members"].append(RENDER_ADMINS)
    capabilities = variant("installer-default")
    capabilities["services"]["DeadlineWorker"]["environment"].append('DEADLINE_WORKER_CAPABILITIES={"amounts": {}}')
    dev_build = variant("installer-default")
    dev_build["agent"]["version"] = "0.27.3.dev4+g1a2b3c4"
    cr_only = simworker.set_file_bytes(variant("installer-default"), simworker.file_bytes(variant("installer-default")).replace(b"\n", b"\r"))
    return {
        **domain_refused_states(),
        "cr-only": cr_only,
        "unreadable-account": unreadable_account,
        "disabled-service": disabled_service,
        "disabled-account": disabled_account,
        "local-system": local_system,
        "nested-admin": nested_admin,
        "capabilities-env": capabilities,
        "dev-build": dev_build,
        "env-override": variant("env-override"),
        "old-agent": variant("old-agent"),
        "no-service": no_service,
        "no-config": no_config,
        "unparsable": garbage,
        "no-account": no_account,
        "fixable": variant("installer-default"),
    }


EXPECTED_CAUSE = {
    **DOMAIN_CAUSE,
    "cr-only": ("CONFIG_INVALID", "CR-only line endings", "CRLF (Windows) or LF line endings"),
    "disabled-service": ("SERVICE_DISABLED", "1058", "Automatic"),
    "disabled-account": ("ACCOUNT_DISABLED", "1069", "Enable"),
    "local-system": ("AGENT_USER_IS_SYSTEM", "LocalSystem", "dedicated account"),
    "nested-admin": ("REMOVAL_REFUSED", "render-admins, nested in it", "render-admins (or that group out of Administrators)"),
    "capabilities-env": ("AGENT_STARTUP_ERROR", "capabilities.attributes: field required", "DEADLINE_WORKER_CAPABILITIES"),
    "dev-build": ("AGENT_VERSION_UNSUPPORTED", "0.27.3.dev4", "Upgrade"),
    "env-override": ("ENV_OVERRIDE", "DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER", "Remove"),
    "old-agent": ("AGENT_VERSION_UNSUPPORTED", "0.27.1", "Upgrade"),
    "no-service": ("SERVICE_MISSING", "DeadlineWorker", "install"),
    "no-config": ("CONFIG_MISSING", "worker.toml", "restore"),
    "unparsable": ("CONFIG_INVALID", "line", "Correct"),
    "no-account": ("ACCOUNT_MISSING", "ghost", "account"),
    "unreadable-account": ("ACCOUNT_UNREADABLE", "0xC0000022 (Access is denied", "Correct what the error names"),
}


def test_refusals_fail_before_any_change_naming_the_cause_and_others_still_converge(tmp_path):
    states = refused_states()
    run, paths = run_role(tmp_path, states)
    assert run.returncode != 0
    for host, (finding, detail, fix) in EXPECTED_CAUSE.items():
        state = state_of(paths[host])
        assert without_calls(state) == without_calls(states[host]), f"{host} was changed"
        assert state["calls_total"] == 1, f"{host}: {state['calls']}"
        fatal = [line for line in run.stdout.splitlines() if line.startswith(f"fatal: [{host}]")]
        assert fatal, f"{host} was not refused"
        assert finding in fatal[0] and detail in fatal[0], fatal[0]
        assert fix.lower() in fatal[0].lower(), fatal[0]
        assert "changed nothing" in fatal[0]
        result = simworker.read_dump(tmp_path, RESULT, host)
        assert finding in {r["id"] for r in result["refused"]} and result["changed"] is False
    # the run goes on for the host the role can fix
    assert_converged(state_of(paths["fixable"]), (*BASE_RIGHTS, "SeShutdownPrivilege"))
    assert simworker.read_dump(tmp_path, RESULT, "fixable")["ready"] is True


def test_a_wrong_variable_type_fails_at_the_start(tmp_path):
    run, paths = run_role(
        tmp_path,
        {"worker-01": variant("installer-default")},
        role_vars={"deadline_worker_agent_user_restart": "sometimes"},
    )
    assert run.returncode != 0
    assert "deadline_worker_agent_user_restart" in run.stdout
    assert "calls_total" not in state_of(paths["worker-01"])


# --- ways in, localized names, shutdown_on_stop ------------------------------------------------


@pytest.mark.parametrize("how", ["roles", "import_role", "include_role"])
def test_the_role_works_through_roles_import_role_and_include_role(tmp_path, how):
    run, paths = run_role(tmp_path, {"worker-01": variant("installer-default")}, how=how)
    recap_ok(run)
    assert_converged(state_of(paths["worker-01"]), BASE_RIGHTS)
    result = simworker.read_dump(tmp_path, RESULT, "worker-01")  # a later task reads the fact
    assert result["ready"] is True and result["changed"] is True


def test_localized_administrators_and_a_bom_converge(tmp_path):
    state = variant("localized-bom")
    assert state["accounts"][ADMINISTRATORS]["name"] == "Administratoren"
    run, paths = run_role(tmp_path, {"worker-de": state})
    recap_ok(run)
    after = state_of(paths["worker-de"])
    assert_converged(after, (*BASE_RIGHTS, "SeShutdownPrivilege"))
    assert b"\r\n" in simworker.file_bytes(after)  # line endings as found
    result = simworker.read_dump(tmp_path, RESULT, "worker-de")
    assert result["groups_left"] == [{"name": "Administratoren", "sid": ADMINISTRATORS}]
    assert result["worker_toml"]["warnings"], "the BOM's removal is reported"


def test_shutdown_privilege_follows_the_agents_resolved_no_shutdown(tmp_path):
    """The agent shuts the host down unless it is told not to: shutdown_on_stop = true, or absent (its
    default no_shutdown = False), needs SeShutdownPrivilege outside Administrators; false, or
    DEADLINE_WORKER_NO_SHUTDOWN=true, does not."""
    absent = variant("installer-default")
    simworker.set_file_bytes(absent, simworker.file_bytes(absent).replace(b"shutdown_on_stop = true\n", b""))
    told_not_to = copy.deepcopy(absent)
    told_not_to["services"]["DeadlineWorker"]["environment"].append("DEADLINE_WORKER_NO_SHUTDOWN=true")
    states = {"on": variant("installer-default"), "off": variant("legacy-keys"), "absent": absent, "env-no-shutdown": told_not_to}
    run, paths = run_role(tmp_path, states)
    recap_ok(run)
    for host, needed in (("on", True), ("off", False), ("absent", True), ("env-no-shutdown", False)):
        assert ("SeShutdownPrivilege" in direct_rights(state_of(paths[host]))) is needed, host
        result = simworker.read_dump(tmp_path, RESULT, host)
        assert ("SeShutdownPrivilege" in result["rights_added"]) is needed, host
        assert "SHUTDOWN_RIGHT_MISSING" not in {f["id"] for f in result["findings_after"]}, host


def test_a_deny_right_that_overrides_a_needed_right_is_refused(tmp_path):
    """Granting SeServiceLogonRight is useless against SeDenyServiceLogonRight: the service could not start."""
    state = variant("installer-default")
    state["rights"]["SeDenyServiceLogonRight"] = [AGENT_SID]
    run, paths = run_role(tmp_path, {"worker-01": state})
    assert run.returncode != 0
    assert "RIGHT_DENIED" in run.stdout and "SeDenyServiceLogonRight" in run.stdout
    assert without_calls(state_of(paths["worker-01"])) == without_calls(state)
    assert simworker.read_dump(tmp_path, RESULT, "worker-01")["refused"][0]["id"] == "RIGHT_DENIED"


# --- refusals before any change (issue: every check that can refuse comes first) ----------------


@pytest.mark.parametrize(
    ("role_vars", "finding", "names"),
    [
        ({"deadline_worker_agent_user_account": "ansible"}, "ACCOUNT_NOT_SERVICE_ACCOUNT", ["ansible", "deadline-worker"]),
        ({"deadline_worker_agent_user_leave_groups": ["S-1-5-32-544", "Render Admins"]}, "GROUP_NOT_FOUND", ["Render Admins"]),
    ],
)
def test_a_refusal_that_depends_on_the_role_variables_comes_before_any_change(tmp_path, role_vars, finding, names):
    state = variant("installer-default")
    run, paths = run_role(tmp_path, {"worker-01": state}, role_vars=role_vars)
    assert run.returncode != 0
    after = state_of(paths["worker-01"])
    assert without_calls(after) == without_calls(state), "the host was changed before the refusal"
    assert after["calls_total"] == 1
    fatal = [line for line in run.stdout.splitlines() if line.startswith("fatal: [worker-01]")]
    assert len(fatal) == 1, "the refusal is printed once"
    assert finding in fatal[0] and all(name in fatal[0] for name in names), fatal[0]
    result = simworker.read_dump(tmp_path, RESULT, "worker-01")
    assert result["status"] == "refused" and result["ready"] is False


def test_the_connection_account_is_refused_before_any_change(tmp_path):
    state = variant("installer-default")
    state["services"]["DeadlineWorker"]["account"] = r".\ansible"
    run, paths = run_role(tmp_path, {"worker-01": state})
    assert run.returncode != 0 and "REMOVAL_REFUSED" in run.stdout and "connected as" in run.stdout
    assert without_calls(state_of(paths["worker-01"])) == without_calls(state)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("deadline_worker_agent_user_rights", "SeServiceLogonRight", "must be a list"),
        ("deadline_worker_agent_user_min_agent_version", "abc", "must be a version"),
        ("deadline_worker_agent_user_restart_timeout", -5, "at least 1"),
    ],
)
def test_a_bad_variable_is_named_before_any_remote_call_and_the_outcome_is_set(tmp_path, variable, value, says):
    run, paths = run_role(tmp_path, {"worker-01": variant("installer-default")}, role_vars={variable: value})
    assert run.returncode != 0
    assert variable in run.stdout and says in run.stdout
    assert "filter plugin" not in run.stdout  # the message starts with the variable, not with Ansible's wrapper
    assert "calls_total" not in state_of(paths["worker-01"])
    result = simworker.read_dump(tmp_path, RESULT, "worker-01")
    assert result["status"] == "failed" and result["ready"] is False and variable in result["error"]


def test_an_account_written_in_yaml_double_quotes_is_refused_naming_the_escape(tmp_path):
    bell = yaml.safe_load('deadline_worker_agent_user_account: ".\\agent"')  # \a is a bell
    run, paths = run_role(tmp_path, {"worker-01": variant("installer-default")}, role_vars=bell)
    assert run.returncode != 0
    fatal = next(line for line in run.stdout.splitlines() if line.startswith("fatal: [worker-01]"))
    assert "deadline_worker_agent_user_account holds a control character" in fatal and "in YAML double quotes" in fatal
    assert "calls_total" not in state_of(paths["worker-01"])


def test_a_misplaced_opt_in_is_moved_into_os_in_the_one_write(tmp_path):
    state = variant("installer-default")
    data = simworker.file_bytes(state).replace(b"\n[aws]\n", b"\n[aws]\nrun_jobs_as_agent_user = true\n", 1)
    simworker.set_file_bytes(state, data)
    run, paths = run_role(tmp_path, {"worker-01": state})
    recap_ok(run)
    after = state_of(paths["worker-01"])
    assert_converged(after, BASE_RIGHTS)
    assert "run_jobs_as_agent_user" not in worker_toml(after)["aws"]


def test_check_mode_on_a_bom_predicts_the_run_that_removes_it(tmp_path):
    run, _paths = run_role(tmp_path, {"worker-de": variant("localized-bom")}, "--check")
    recap_ok(run)
    assert "would not stay running" not in run.stdout
    result = simworker.read_dump(tmp_path, RESULT, "worker-de")
    assert result["status"] == "would_change" and "CONFIG_ENCODING" not in {f["id"] for f in result["findings_after"]}


# --- restarts that do not interrupt renders ------------------------------------------------------


def busy(state: dict, *sessions: dict) -> dict:
    state["services"]["DeadlineWorker"]["sessions"] = list(sessions)
    return state


def test_an_idle_restart_waits_for_the_sessions_to_end_and_interrupts_none(tmp_path):
    state = busy(variant("installer-default"), {"id": "session-1", "ends_after_s": 3})
    run, paths = run_role(
        tmp_path, {"worker-01": state},
        role_vars={"deadline_worker_agent_user_idle_timeout": 30, "deadline_worker_agent_user_idle_poll": 1},
    )
    recap_ok(run)
    after = state_of(paths["worker-01"])
    assert after["services"]["DeadlineWorker"].get("interrupted_sessions", []) == []
    assert after["services"]["DeadlineWorker"]["restarts"] == 1
    assert 2 <= after["calls"]["control_service"] <= 6, after["calls"]  # one call per poll while busy
    assert simworker.read_dump(tmp_path, RESULT, "worker-01")["status"] == "fixed"


def test_a_host_still_busy_at_the_deadline_is_restart_pending_and_the_next_run_restarts_it(tmp_path):
    state = busy(variant("installer-default"), {"id": "session-9"})  # runs until the service stops
    run, paths = run_role(tmp_path, {"worker-01": state}, role_vars={"deadline_worker_agent_user_idle_timeout": 0})
    recap_ok(run)  # a pending restart is not a failure
    after = state_of(paths["worker-01"])
    assert after["services"]["DeadlineWorker"]["restarts"] == 0
    assert after["services"]["DeadlineWorker"].get("interrupted_sessions", []) == []
    assert not in_administrators(after)  # everything else is converged
    result = simworker.read_dump(tmp_path, RESULT, "worker-01")
    assert result["status"] == "restart_pending" and result["ready"] is False
    assert result["restart_pending_reason"] == "busy: 1 session(s) running"

    after["services"]["DeadlineWorker"]["sessions"] = []  # the render ended
    simworker.save_state(paths["worker-01"], after)
    again, _paths = run_role(tmp_path, {"worker-01": {}})
    recap_ok(again)
    done = state_of(paths["worker-01"])
    assert done["services"]["DeadlineWorker"]["restarts"] == 1
    assert simworker.read_dump(tmp_path, RESULT, "worker-01")["status"] == "fixed"


def opted_in(state: dict) -> dict:
    """The installer's worker with the opt-in already in worker.toml: only the account's groups and rights are left to do."""
    data = simworker.file_bytes(state).replace(b"\n[os]\n", b"\n[os]\nrun_jobs_as_agent_user = true\n", 1)
    return simworker.set_file_bytes(state, data)


def test_an_agent_left_running_with_its_administrator_token_is_restarted_by_the_next_run_once_idle(tmp_path):
    # Run 1 takes the account out of Administrators while a render runs: the restart is skipped, and the
    # running agent keeps the token it started with. worker.toml did not change (CONFIG_NOT_LOADED says
    # nothing), yet the next run must not call the host already_fine while jobs still run as an administrator.
    state = busy(opted_in(variant("installer-default")), {"id": "session-9"})
    run, paths = run_role(tmp_path, {"worker-01": state}, role_vars={"deadline_worker_agent_user_idle_timeout": 0})
    recap_ok(run)
    after = state_of(paths["worker-01"])
    assert not in_administrators(after) and after["services"]["DeadlineWorker"]["restarts"] == 0
    first = simworker.read_dump(tmp_path, RESULT, "worker-01")
    assert first["status"] == "restart_pending" and first["ready"] is False

    # Still busy at the second run: still pending, never already_fine.
    busy_again, _paths = run_role(tmp_path, {"worker-01": {}}, role_vars={"deadline_worker_agent_user_idle_timeout": 0})
    recap_ok(busy_again)
    second = simworker.read_dump(tmp_path, RESULT, "worker-01")
    assert second["status"] == "restart_pending" and second["ready"] is False, second["status"]
    assert "AGENT_TOKEN_STALE" in {f["id"] for f in second["findings_before"]}
    assert second["restart_pending_reason"] == "busy: 1 session(s) running"
    after = state_of(paths["worker-01"])
    assert after["services"]["DeadlineWorker"]["restarts"] == 0 and after["services"]["DeadlineWorker"].get("interrupted_sessions", []) == []

    after["services"]["DeadlineWorker"]["sessions"] = []  # the render ended
    simworker.save_state(paths["worker-01"], after)
    idle, _paths = run_role(tmp_path, {"worker-01": {}})
    recap_ok(idle)
    third = simworker.read_dump(tmp_path, RESULT, "worker-01")
    assert third["status"] == "fixed" and third["ready"] is True and third["restarted"] is True
    assert "AGENT_TOKEN_STALE" not in {f["id"] for f in third["findings_after"]}
    done = state_of(paths["worker-01"])
    assert done["services"]["DeadlineWorker"]["restarts"] == 1
    assert "S-1-5-32-544" not in done["services"]["DeadlineWorker"]["token_groups"]

    # Converged now: a re-run reads once and changes nothing.
    calls_before = done["calls_total"]
    again, _paths = run_role(tmp_path, {"worker-01": {}})
    recap_ok(again)
    assert simworker.read_dump(tmp_path, RESULT, "worker-01")["status"] == "already_fine"
    assert state_of(paths["worker-01"])["calls_total"] - calls_before == 1


def test_interrupt_mode_stops_a_busy_agent_and_reports_the_interrupted_sessions(tmp_path):
    state = busy(variant("installer-default"), {"id": "session-7"})
    run, paths = run_role(
        tmp_path, {"worker-01": state},
        role_vars={"deadline_worker_agent_user_idle_timeout": 0, "deadline_worker_agent_user_when_busy": "interrupt"},
    )
    recap_ok(run)
    after = state_of(paths["worker-01"])
    assert after["services"]["DeadlineWorker"]["interrupted_sessions"] == ["session-7"]
    assert after["services"]["DeadlineWorker"]["restarts"] == 1
    result = simworker.read_dump(tmp_path, RESULT, "worker-01")
    assert result["interrupted_sessions"] == 1 and result["status"] == "fixed"


def test_restart_when_always_still_interrupts_a_busy_agent_the_role_passing_its_choice_to_the_module(tmp_path):
    """worker_agent_service no longer stops a busy agent unless told to: the role tells it (when_busy interrupt)."""
    state = busy(variant("installer-default"), {"id": "session-8"})
    run, paths = run_role(tmp_path, {"worker-01": state}, role_vars={"deadline_worker_agent_user_restart_when": "always"})
    recap_ok(run)
    after = state_of(paths["worker-01"])
    assert after["services"]["DeadlineWorker"]["interrupted_sessions"] == ["session-8"]
    result = simworker.read_dump(tmp_path, RESULT, "worker-01")
    assert result["status"] == "fixed" and result["interrupted_sessions"] == 1


def test_the_role_leaves_the_callers_handlers_alone(tmp_path):
    paths = {"worker-01": simworker.save_state(tmp_path / "worker-01.yml", variant("installer-default"))}
    inventory = simworker.write_inventory(tmp_path, paths)
    marker = tmp_path / "handler-ran"
    playbook = tmp_path / "caller.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "A caller's play",
        "hosts": "deadline_workers",
        "gather_facts": False,
        "tasks": [
            {"name": "Something of the caller's", "ansible.builtin.debug": {"msg": "x"}, "changed_when": True, "notify": "caller handler"},
            {"name": "The role", "ansible.builtin.include_role": {"name": ROLE}},
            {"name": "Handler not run yet", "ansible.builtin.stat": {"path": str(marker)}, "register": "st",
             "delegate_to": "localhost", "vars": {"ansible_connection": "local"}},
            {"name": "Check", "ansible.builtin.assert": {"that": "not st.stat.exists"}},
        ],
        "handlers": [{"name": "caller handler", "ansible.builtin.file": {"path": str(marker), "state": "touch", "mode": "0644"},
                      "delegate_to": "localhost", "vars": {"ansible_connection": "local"}}],
    }], sort_keys=False), encoding="utf-8")
    run = simworker.run_playbook(playbook, inventory, env=simworker.ansible_env())
    recap_ok(run)
    assert marker.exists()  # at the end of the play, as the caller expects


def test_tags_select_the_diagnosis_alone_or_skip_the_restart(tmp_path):
    run, paths = run_role(tmp_path, {"worker-01": variant("installer-default")}, "--tags", "deadline_worker_agent_user_diagnose", how="roles")
    recap_ok(run)
    state = state_of(paths["worker-01"])
    assert state["calls"] == {"read_agent_info": 1}
    assert simworker.read_dump(tmp_path, RESULT, "worker-01")["status"] == "planned"

    skipped, _paths = run_role(tmp_path, {"worker-01": {}}, "--skip-tags", "deadline_worker_agent_user_restart", how="roles")
    recap_ok(skipped)
    state = state_of(paths["worker-01"])
    assert "control_service" not in state["calls"] and not in_administrators(state)
    assert simworker.read_dump(tmp_path, RESULT, "worker-01")["status"] == "restart_pending"


def test_with_verification_off_the_restart_is_trusted_and_the_prediction_reported(tmp_path):
    run, paths = run_role(tmp_path, {"worker-01": variant("installer-default")}, role_vars={"deadline_worker_agent_user_verify": False})
    recap_ok(run)
    state = state_of(paths["worker-01"])
    assert state["calls"].get("read_agent_info") == 1 and state["calls_total"] <= 5
    result = simworker.read_dump(tmp_path, RESULT, "worker-01")
    assert result["status"] == "fixed" and result["ready"] is True
    assert result["verified_by"] == "prediction (verification off)"


# --- domain-joined farms: converging, and what diagnose shows -----------------------------------


def test_a_domain_worker_whose_policy_lists_a_group_it_keeps_converges_and_its_rights_outlive_the_refresh(tmp_path):
    """The simulated start applies the policy first (a refresh happened): the verification reading
    after the restart is taken on rights the policy has just reset."""
    policy = {"SeServiceLogonRight": [ALL_SERVICES, simworker.RENDER_SERVICES], "SeShutdownPrivilege": [ADMINISTRATORS, simworker.RENDER_SERVICES]}
    run, paths = run_role(tmp_path, {"worker-01": simworker.domain_state(policy=policy)})
    recap_ok(run)
    state = state_of(paths["worker-01"])
    assert state["rights"]["SeServiceLogonRight"] == [ALL_SERVICES, simworker.RENDER_SERVICES]  # reset at the start
    assert simworker.RENDER_SVC not in state["accounts"][ADMINISTRATORS]["members"]
    assert state["services"]["DeadlineWorker"]["state"] == "running" and state["calls_total"] <= 5
    result = simworker.read_dump(tmp_path, RESULT, "worker-01")
    assert result["status"] == "fixed" and result["ready"] is True
    assert "SeShutdownPrivilege" not in result["rights_added"]  # the policy gives it through Render Services
    assert not [f for f in result["findings_after"] if f["severity"] in ("blocker", "security")]

    calls = state["calls_total"]
    again, _paths = run_role(tmp_path, {"worker-01": {}})
    recap_ok(again)
    assert state_of(paths["worker-01"])["calls_total"] - calls == 1


def test_diagnose_shows_the_finding_converge_refuses_for(tmp_path):
    states = domain_refused_states()
    paths = {host: simworker.save_state(tmp_path / f"{host}.yml", states[host]) for host in ("policy-logon", "policy-shutdown", "no-dc")}
    inventory = simworker.write_inventory(tmp_path, paths)
    run = simworker.run_playbook(simworker.REPO_ROOT / "playbooks" / "diagnose.yml", inventory, env=simworker.ansible_env())
    recap_ok(run)
    shown_as = {"policy-logon": "BLOCKER RIGHT_OWNED_BY_POLICY", "policy-shutdown": "WARNING RIGHT_OWNED_BY_POLICY", "no-dc": "SECURITY DOMAIN_UNREACHABLE"}
    for host, finding in shown_as.items():
        shown = run.stdout[run.stdout.index(f"ok: [{host}] => {{") :]
        shown = shown[: shown.index("\n}")]
        assert finding in shown, shown
        assert shown.index("converge refuses it", shown.index(finding)) > 0
        assert without_calls(state_of(paths[host])) == without_calls(states[host])
