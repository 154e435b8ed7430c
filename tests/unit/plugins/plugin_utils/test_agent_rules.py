# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""agent_rules: each finding alone and in combination, over readings of simulated workers."""

from __future__ import annotations

import copy
import re

import pytest
import simworker
import yaml

from ansible_collections.deadline_cloud.cmf.plugins.modules import worker_agent_info
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import rules as agent_rules
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import startup as agent_startup
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.agent import read_agent_info
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.state import SimulatedState

AGENT_SID = "S-1-5-21-3623811015-3361044348-30300820-1001"
ADMINISTRATORS = "S-1-5-32-544"


def edit_os(state: dict, lines: str) -> dict:
    text = simworker.file_bytes(state).decode()
    return simworker.set_file_bytes(state, text.replace("[os]\n", "[os]\n" + lines, 1).encode())


def ready_state() -> dict:
    """The installer's host after the role: opted in, out of Administrators, rights held directly."""
    state = edit_os(simworker.example_state(), "run_jobs_as_agent_user = true\n")
    state["accounts"][ADMINISTRATORS]["members"].remove(AGENT_SID)
    for right in ("SeIncreaseQuotaPrivilege", "SeShutdownPrivilege"):
        state["rights"][right].append(AGENT_SID)
    return state


def describe(state: dict, service: str = "DeadlineWorker", account: str = "") -> dict:
    raw = read_agent_info(SimulatedState(copy.deepcopy(state)), {"service": service, "config_path": simworker.WORKER_TOML, "account": account})
    return agent_rules.describe(raw)


def ids(result: dict) -> list[str]:
    return [f["id"] for f in result["findings"]]


def finding(result: dict, id_: str) -> dict:
    return next(f for f in result["findings"] if f["id"] == id_)


def test_the_installer_state():
    result = describe(simworker.example_state())
    assert ids(result) == ["AGENT_OPT_IN_MISSING", "AGENT_USER_IS_ADMIN", "MESSAGE_IS_MISLEADING"]
    assert result["ready"] is False
    assert agent_rules.ADMIN_MESSAGE in finding(result, "MESSAGE_IS_MISLEADING")["message"]
    assert "only the opt-in decides" in finding(result, "MESSAGE_IS_MISLEADING")["message"].lower()


def test_the_converged_state_is_ready_with_no_finding():
    result = describe(ready_state())
    assert result["findings"] == []
    assert result["ready"] is True


def _stale(state: dict) -> dict:
    """The running agent started while its account was in Administrators: its token still has the group."""
    state["services"]["DeadlineWorker"]["token_groups"] = [ADMINISTRATORS, "S-1-5-32-545", "S-1-1-0", "S-1-5-11", "S-1-5-6"]
    return state


def test_a_running_agent_whose_token_holds_administrators_after_its_account_left_them_is_stale():
    result = describe(_stale(ready_state()))
    assert ids(result) == ["AGENT_TOKEN_STALE"]
    stale = finding(result, "AGENT_TOKEN_STALE")
    assert stale["severity"] == "security"
    assert "still runs with Administrators (S-1-5-32-544) in its token" in stale["message"]
    assert "jobs run as an administrator until the service restarts" in stale["message"]
    assert stale["fix"].startswith("Restart the DeadlineWorker service when it is idle")
    assert result["ready"] is True  # what is on disk is right; the restart is the fix
    assert result["service"]["token_administrators"] is True


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda s: s["accounts"][ADMINISTRATORS]["members"].append(AGENT_SID), "still in Administrators: AGENT_USER_IS_ADMIN says it"),
        (lambda s: s["services"]["DeadlineWorker"].update(state="stopped"), "no process, no token"),
        (lambda s: s["services"]["DeadlineWorker"].update(token_groups=["S-1-5-32-545"]), "a token without the group"),
    ],
    ids=["in-administrators", "stopped", "token-without-administrators"],
)
def test_a_token_that_is_not_stale_is_no_finding(change, why):
    state = _stale(ready_state())
    change(state)
    assert "AGENT_TOKEN_STALE" not in ids(describe(state)), why


def test_a_token_not_read_or_a_reading_that_cannot_tell_is_no_finding():
    raw = read_agent_info(SimulatedState(_stale(ready_state())), {"service": "DeadlineWorker", "config_path": simworker.WORKER_TOML, "account": ""})
    unread = copy.deepcopy(raw)
    unread["service"].update(token_administrators=None, token_error="OpenProcessToken(4100) failed: Win32 5 (Access is denied)")
    assert "AGENT_TOKEN_STALE" not in ids(agent_rules.describe(unread))  # never a guess
    unknown = copy.deepcopy(raw)
    unknown["account"].update(token_groups_known=False, token_groups_error={"code": "DOMAIN_UNREACHABLE", "message": "no DC"})
    assert "AGENT_TOKEN_STALE" not in ids(agent_rules.describe(unknown))
    other = copy.deepcopy(raw)
    other["service"]["account_sid"] = "S-1-5-21-3623811015-3361044348-30300820-1002"  # the reading is of another account
    assert "AGENT_TOKEN_STALE" not in ids(agent_rules.describe(other))
    assert "AGENT_TOKEN_STALE" in ids(agent_rules.describe(raw))


def _timed(state: dict, started: str | None, modified: str | None, service_state: str = "running") -> dict:
    state["services"]["DeadlineWorker"].update(state=service_state)
    if started:
        state["services"]["DeadlineWorker"]["started_at"] = started
    if modified:
        state["files"][simworker.WORKER_TOML]["modified"] = modified
    return state


def test_a_worker_toml_newer_than_the_running_agent_is_not_loaded_yet():
    result = describe(_timed(ready_state(), "2026-11-28T09:00:00+00:00", "2026-11-28T09:30:00.1234567Z"))
    assert ids(result) == ["CONFIG_NOT_LOADED"]
    assert finding(result, "CONFIG_NOT_LOADED")["severity"] == "warning"
    assert "reads worker.toml only when it starts" in finding(result, "CONFIG_NOT_LOADED")["message"]
    assert result["ready"] is True  # ready speaks of what is on disk; the restart is the fix
    assert result["service"]["started_at"] == "2026-11-28T09:00:00+00:00"
    assert result["config"]["modified_at"] == "2026-11-28T09:30:00.1234567Z"


@pytest.mark.parametrize(
    ("started", "modified", "service_state"),
    [
        ("2026-11-28T09:30:00+00:00", "2026-11-28T09:00:00+00:00", "running"),  # restarted after the write
        ("2026-11-28T09:00:00+00:00", "2026-11-28T09:30:00+00:00", "stopped"),  # nothing runs: the next start reads it
        ("2026-11-28T09:00:00+00:00", None, "running"),  # no write time known
        (None, None, "running"),
    ],
)
def test_no_config_not_loaded_when_the_agent_runs_what_is_on_disk_or_nothing_is_known(started, modified, service_state):
    assert "CONFIG_NOT_LOADED" not in ids(describe(_timed(ready_state(), started, modified, service_state)))


# Each mutation of the ready state triggers exactly these findings.
def _machine_env(name, value):
    def mutate(state):
        state["environment"] = {name: value}

    return mutate


def _service_env(entry):
    def mutate(state):
        state["services"]["DeadlineWorker"]["environment"].append(entry)

    return mutate


def _replace_toml(old, new):
    def mutate(state):
        text = simworker.file_bytes(state).decode()
        assert old in text
        simworker.set_file_bytes(state, text.replace(old, new, 1).encode())

    return mutate


def _bytes(transform):
    def mutate(state):
        simworker.set_file_bytes(state, transform(simworker.file_bytes(state)))

    return mutate


def _version(version):
    def mutate(state):
        state["agent"]["version"] = version

    return mutate


def _no_file(state):
    del state["files"][simworker.WORKER_TOML]


def _no_service(state):
    del state["services"]["DeadlineWorker"]


def _no_logon_right(state):
    state["rights"]["SeServiceLogonRight"] = []


def _no_shutdown_right(state):
    state["rights"]["SeShutdownPrivilege"] = [ADMINISTRATORS]


def _local_system(state):
    state["accounts"]["S-1-5-18"] = {"name": "SYSTEM", "domain": "NT AUTHORITY", "type": "well_known"}
    state["services"]["DeadlineWorker"]["account"] = "LocalSystem"
    state["rights"]["SeShutdownPrivilege"].append("S-1-5-18")


def _admin(state):
    state["accounts"][ADMINISTRATORS]["members"].append(AGENT_SID)


ALONE = {
    "opt_in_false": (_replace_toml("run_jobs_as_agent_user = true", "run_jobs_as_agent_user = false"), ["AGENT_OPT_IN_MISSING", "MESSAGE_IS_MISLEADING"]),
    # the file sets the opt-in: the variable is the one cause (AGENT_OPT_IN_MISSING would be its consequence)
    "machine_env_off": (_machine_env("DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER", "false"), ["ENV_OVERRIDE", "MESSAGE_IS_MISLEADING"]),
    "service_env_off": (_service_env("DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER=no"), ["ENV_OVERRIDE", "MESSAGE_IS_MISLEADING"]),
    "env_job_user": (_service_env("DEADLINE_WORKER_WINDOWS_JOB_USER=job-user"), ["ENV_OVERRIDE", "JOB_USER_CONFLICT"]),
    "file_job_user": (
        edit_os_line := _replace_toml("run_jobs_as_agent_user = true", 'run_jobs_as_agent_user = true\nwindows_job_user = "job-user"'),
        ["JOB_USER_CONFLICT"],
    ),
    "impersonation": (_replace_toml("run_jobs_as_agent_user = true", "run_jobs_as_agent_user = true\nimpersonation = false"), ["LEGACY_IMPERSONATION_KEY"]),
    "bom": (_bytes(lambda data: b"\xef\xbb\xbf" + data), ["CONFIG_ENCODING"]),
    "utf16": (_bytes(lambda data: data.decode().encode("utf-16")), ["CONFIG_ENCODING"]),
    "invalid_toml": (_replace_toml("run_jobs_as_agent_user = true", "run_jobs_as_agent_user = "), ["CONFIG_INVALID"]),
    "cr_only_line_endings": (_bytes(lambda data: data.replace(b"\n", b"\r")), ["CONFIG_INVALID"]),
    "missing_table": (_replace_toml("[logging]\n", "[loging]\n"), ["CONFIG_INVALID"]),
    "wrong_type": (_replace_toml("shutdown_on_stop = true", 'shutdown_on_stop = "sometimes"'), ["CONFIG_INVALID"]),
    # appended at the end, the key lands in [capabilities.attributes], where only capability names go
    "appended_opt_in": (_bytes(lambda data: data + b"run_jobs_as_agent_user = true\n"), ["CONFIG_INVALID"]),
    # without a file the agent resolves the opt-in from its environment alone, and stops without farm_id
    "no_file": (_no_file, ["CONFIG_MISSING"]),  # no file, no opt-in to load: restoring the file is the fix
    "old_agent": (_version("0.27.1"), ["AGENT_VERSION_UNSUPPORTED", "MESSAGE_IS_MISLEADING"]),
    "crashing_agent": (_version("0.27.2"), ["AGENT_VERSION_UNSUPPORTED"]),
    "no_service": (_no_service, ["SERVICE_MISSING"]),
    "no_logon_right": (_no_logon_right, ["SERVICE_LOGON_RIGHT_MISSING"]),
    "denied_logon_right": (lambda state: state["rights"].__setitem__("SeDenyServiceLogonRight", [AGENT_SID]), ["RIGHT_DENIED"]),
    "misplaced": (_replace_toml("[aws]\n", "[aws]\nverbose = true\n"), ["MISPLACED_KEY"]),
    "no_shutdown_right": (_no_shutdown_right, ["SHUTDOWN_RIGHT_MISSING"]),
    "admin": (_admin, ["AGENT_USER_IS_ADMIN"]),
    "no_farm_id": (_replace_toml('farm_id = "farm-0123456789abcdef0123456789abcdef"', "# no farm"), ["AGENT_STARTUP_ERROR"]),
    # the Service Control Manager refuses a disabled service (1058) and a disabled logon account (1069)
    "service_disabled": (lambda state: state["services"]["DeadlineWorker"].__setitem__("start_mode", "disabled"), ["SERVICE_DISABLED"]),
    "account_disabled": (lambda state: state["accounts"][AGENT_SID].__setitem__("enabled", False), ["ACCOUNT_DISABLED"]),
    "local_system": (_local_system, ["AGENT_USER_IS_SYSTEM"]),
    # a development build of 0.27.3 is older than 0.27.3 (PEP 440) and may lack the #298 fix
    "dev_build": (_version("0.27.3.dev4+g1a2b3c4"), ["AGENT_VERSION_UNSUPPORTED"]),
    # values the agent refuses stop it at start: that is the cause, not what the value would have meant
    "opt_in_variable_unparseable": (_service_env("DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER=enabled"), ["AGENT_STARTUP_ERROR"]),
    "job_user_variable_empty": (_service_env("DEADLINE_WORKER_WINDOWS_JOB_USER="), ["AGENT_STARTUP_ERROR"]),
    "capabilities_variable_not_json": (_service_env("DEADLINE_WORKER_CAPABILITIES=not json"), ["AGENT_STARTUP_ERROR"]),
    "capabilities_variable_refused": (_service_env('DEADLINE_WORKER_CAPABILITIES={"amounts": {}}'), ["AGENT_STARTUP_ERROR"]),
}
SEVERITY = {
    "AGENT_OPT_IN_MISSING": "blocker",
    "ENV_OVERRIDE": "blocker",
    "JOB_USER_CONFLICT": "blocker",
    "LEGACY_IMPERSONATION_KEY": "blocker",
    "CONFIG_ENCODING": "blocker",
    "CONFIG_INVALID": "blocker",
    "CONFIG_MISSING": "blocker",
    "AGENT_VERSION_UNSUPPORTED": "blocker",
    "SERVICE_MISSING": "blocker",
    "SERVICE_LOGON_RIGHT_MISSING": "blocker",
    "RIGHT_DENIED": "blocker",
    "AGENT_STARTUP_ERROR": "blocker",
    "MISPLACED_KEY": "warning",
    "AGENT_USER_IS_ADMIN": "security",
    "SHUTDOWN_RIGHT_MISSING": "warning",
    "MESSAGE_IS_MISLEADING": "info",
    "SERVICE_DISABLED": "blocker",
    "ACCOUNT_DISABLED": "blocker",
    "AGENT_USER_IS_SYSTEM": "security",
}


@pytest.mark.parametrize("case", sorted(ALONE))
def test_each_finding_alone(case):
    mutate, expected = ALONE[case]
    state = ready_state()
    mutate(state)
    result = describe(state)
    assert sorted(ids(result)) == sorted(expected)
    for f in result["findings"]:
        assert f["severity"] == SEVERITY[f["id"]]
        assert f["message"] and f["fix"]
    blockers = any(SEVERITY[i] == "blocker" for i in expected)
    assert result["ready"] is (not blockers)


def test_every_id_of_the_table_is_triggered_by_some_case():
    triggered = {i for _m, expected in ALONE.values() for i in expected}
    assert triggered == set(SEVERITY)


def test_findings_in_combination_are_ordered_by_severity():
    state = ready_state()
    for case in ("admin", "impersonation", "machine_env_off", "misplaced", "old_agent"):
        ALONE[case][0](state)
    result = describe(state)
    assert sorted(ids(result)) == sorted(
        ["AGENT_USER_IS_ADMIN", "LEGACY_IMPERSONATION_KEY", "ENV_OVERRIDE", "MISPLACED_KEY", "AGENT_VERSION_UNSUPPORTED"]
    )
    order = [agent_rules.SEVERITIES.index(f["severity"]) for f in result["findings"]]
    assert order == sorted(order)
    assert result["startup"]["error"].startswith("Parsing errors loading configuration file")
    assert "MESSAGE_IS_MISLEADING" not in ids(result)  # an agent that does not start fails no job


def test_a_bom_does_not_hide_what_lies_behind_it():
    state = simworker.example_state()
    simworker.set_file_bytes(state, b"\xef\xbb\xbf" + simworker.file_bytes(edit_os(state, 'run_jobs_as_agent_user = true\nwindows_job_user = "u"\n')))
    result = describe(state)
    assert {"CONFIG_ENCODING", "JOB_USER_CONFLICT"} <= set(ids(result))
    assert result["startup"]["stage"] == "encoding"


def test_env_override_names_the_variable_and_when_each_kind_takes_effect():
    state = ready_state()
    state["environment"] = {"DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER": "0"}
    state["services"]["DeadlineWorker"]["environment"].append("DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER=false")
    override = finding(describe(state), "ENV_OVERRIDE")
    assert "service's own Environment value" in override["message"]  # the service value wins
    assert override["fix"].count("DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER") >= 2  # both places named
    assert "only after a reboot" in override["fix"]
    assert "next start" in override["fix"]


def test_a_service_value_true_wins_over_a_machine_false():
    state = ready_state()
    state["environment"] = {"DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER": "false"}
    state["services"]["DeadlineWorker"]["environment"].append("DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER=yes")
    result = describe(state)
    assert result["settings"]["run_jobs_as_agent_user"] == {"value": True, "source": "service", "variable": "DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER"}
    assert result["ready"] is True


@pytest.mark.parametrize(
    ("toml_line", "variable", "needs_the_right", "says"),
    [
        ("shutdown_on_stop = true", None, True, "sets [os] shutdown_on_stop = true"),
        # absent: the agent keeps its default no_shutdown = False and shuts the host down
        ("# shutdown_on_stop removed", None, True, "does not set [os] shutdown_on_stop, and the agent's default"),
        ("shutdown_on_stop = false", None, False, ""),
        ("# shutdown_on_stop removed", "DEADLINE_WORKER_NO_SHUTDOWN=true", False, ""),
        ("shutdown_on_stop = false", "DEADLINE_WORKER_NO_SHUTDOWN=no", True, "DEADLINE_WORKER_NO_SHUTDOWN=no in the service's own Environment"),
    ],
)
def test_the_shutdown_right_follows_the_agents_resolved_no_shutdown(toml_line, variable, needs_the_right, says):
    state = ready_state()
    _no_shutdown_right(state)
    _replace_toml("shutdown_on_stop = true", toml_line)(state)
    if variable:
        _service_env(variable)(state)
    result = describe(state)
    assert result["settings"]["shutdown_on_stop"]["value"] is needs_the_right
    assert ("SHUTDOWN_RIGHT_MISSING" in ids(result)) is needs_the_right
    if needs_the_right:
        missing = finding(result, "SHUTDOWN_RIGHT_MISSING")
        assert says in missing["message"] and "lacks SeShutdownPrivilege" in missing["message"]
        assert "shutdown_on_stop = false" in missing["fix"]


@pytest.mark.parametrize(
    ("toml_line", "where", "then"),
    [
        # the file already says false: the variable alone decides, and removing it is the fix
        ("shutdown_on_stop = false", "service", "worker.toml's [os] shutdown_on_stop = false then decides"),
        ("shutdown_on_stop = true", "service", "then set [os] shutdown_on_stop = false in worker.toml"),
        ("shutdown_on_stop = true", "machine", "then set [os] shutdown_on_stop = false in worker.toml"),
    ],
)
def test_where_the_no_shutdown_variable_decides_the_fix_names_it_not_the_file_alone(toml_line, where, then):
    """DEADLINE_WORKER_NO_SHUTDOWN overrides worker.toml: "set [os] shutdown_on_stop = false" alone would change nothing."""
    state = ready_state()
    _no_shutdown_right(state)
    _replace_toml("shutdown_on_stop = true", toml_line)(state)
    if where == "service":
        _service_env("DEADLINE_WORKER_NO_SHUTDOWN=false")(state)
        location = "from the Environment value of HKLM\\SYSTEM\\CurrentControlSet\\Services\\DeadlineWorker"
    else:
        state["environment"] = {"DEADLINE_WORKER_NO_SHUTDOWN": "false"}
        location = "remove the machine variable DEADLINE_WORKER_NO_SHUTDOWN"
    fix = finding(describe(state), "SHUTDOWN_RIGHT_MISSING")["fix"]
    assert fix.startswith("Grant SeShutdownPrivilege to ")
    assert "if the host must not shut down, DEADLINE_WORKER_NO_SHUTDOWN decides over worker.toml: " in fix
    assert location in fix and then in fix
    if toml_line == "shutdown_on_stop = false":
        assert "set [os] shutdown_on_stop = false" not in fix  # already so: the variable is what decides


def test_the_administrators_fix_names_only_the_rights_the_agent_needs_and_where_the_shutdown_is_decided():
    state = simworker.example_state()  # the installer's: shutdown_on_stop = true, in Administrators
    fix = finding(describe(state), "AGENT_USER_IS_ADMIN")["fix"]
    assert fix.startswith("Grant the account SeIncreaseQuotaPrivilege, SeShutdownPrivilege directly")  # the others it holds
    assert fix.endswith("; then remove it from Administrators.")
    _replace_toml("shutdown_on_stop = true", "shutdown_on_stop = false")(state)
    fix = finding(describe(state), "AGENT_USER_IS_ADMIN")["fix"]
    assert "SeShutdownPrivilege" not in fix and "shutdown_on_stop" not in fix  # the agent does not shut the host down
    _service_env("DEADLINE_WORKER_NO_SHUTDOWN=false")(state)
    fix = finding(describe(state), "AGENT_USER_IS_ADMIN")["fix"]
    assert "SeShutdownPrivilege" in fix and "DEADLINE_WORKER_NO_SHUTDOWN decides over worker.toml" in fix


def test_version_messages_distinguish_ignored_and_crashing():
    state = ready_state()
    state["agent"]["version"] = "0.26.0"
    ignored = finding(describe(state), "AGENT_VERSION_UNSUPPORTED")["message"]
    state["agent"]["version"] = "0.27.2"
    crashes = finding(describe(state), "AGENT_VERSION_UNSUPPORTED")["message"]
    assert "ignores run_jobs_as_agent_user" in ignored and "crashes" not in ignored
    assert "crashes" in crashes and "#298" in crashes
    state["agent"]["version"] = "0.27.3"
    assert describe(state)["ready"] is True


@pytest.mark.parametrize(
    ("version", "error", "says", "fix"),
    [
        # a version that reads as text but is no release number: the agent is installed
        ("unknown", None, "reports its version as 'unknown'", "Reinstall a release"),
        (None, "deadline_worker_agent is not installed", "could not be read", "Install deadline-cloud-worker-agent"),
        (None, "python.exe exited with 1: importlib.metadata.PackageNotFoundError: No package metadata was found", "could not be read", "Install"),
        (None, "python.exe did not finish within 120 seconds", "did not finish", "Correct what the error says"),
    ],
)
def test_an_unreadable_version_says_why_and_never_tells_to_install_an_installed_agent(version, error, says, fix):
    state = ready_state()
    state["agent"]["version"] = version
    raw = read_agent_info(SimulatedState(copy.deepcopy(state)), {"service": "DeadlineWorker", "config_path": simworker.WORKER_TOML, "account": ""})
    if error:
        raw["agent"]["error"] = error
    found = next(f for f in agent_rules.describe(raw)["findings"] if f["id"] == "AGENT_VERSION_UNSUPPORTED")
    assert says in found["message"] and found["fix"].startswith(fix)
    if version is not None or "did not finish" in str(error):
        assert not found["fix"].startswith("Install")


def test_the_0_23_message_is_quoted_for_0_23():
    state = simworker.example_state()
    state["agent"]["version"] = "0.23.1"
    assert agent_rules.ADMIN_MESSAGE_0_23 in finding(describe(state), "MESSAGE_IS_MISLEADING")["message"]
    state["agent"]["version"] = "0.22.0"  # no check at all before 0.23.0
    assert "MESSAGE_IS_MISLEADING" not in ids(describe(state))


def test_job_user_equal_to_the_agent_user_gets_the_agents_own_refusal():
    state = ready_state()
    ALONE["file_job_user"][0](state)
    text = simworker.file_bytes(state).decode().replace('"job-user"', '"deadline-worker"')
    simworker.set_file_bytes(state, text.encode())
    verdict = describe(state)["startup"]
    assert verdict["error"].startswith("Windows job user override must not be the user running the worker agent: deadline-worker.")


def test_a_denied_logon_right_names_the_deny_right_not_a_grant():
    state = ready_state()
    state["rights"]["SeDenyServiceLogonRight"] = [AGENT_SID]
    result = describe(state)
    assert ids(result) == ["RIGHT_DENIED"]  # the account holds SeServiceLogonRight directly: granting it is no fix
    denied = finding(result, "RIGHT_DENIED")
    assert "holds SeDenyServiceLogonRight (Deny log on as a service) directly" in denied["message"]
    assert "(held directly)" in denied["message"]
    assert f"from the account {AGENT_SID}" in denied["fix"]
    assert "Local Security Policy" in denied["fix"] and "GPO" in denied["fix"] and "next policy refresh" in denied["fix"]
    assert "Grant" not in denied["fix"]
    assert result["account"]["effective_rights"]["SeServiceLogonRight"]["denied"] is True
    assert result["startup"] == {"starts": False, "error": agent_startup.SERVICE_LOGON_ERROR, "stage": "logon"}


GUESTS = "S-1-5-32-546"


def test_a_deny_right_through_a_group_names_the_group():
    state = ready_state()
    state["accounts"][GUESTS] = {"name": "Guests", "type": "group", "members": [AGENT_SID]}
    state["rights"]["SeDenyServiceLogonRight"] = [GUESTS]
    denied = finding(describe(state), "RIGHT_DENIED")
    assert f"through Guests ({GUESTS})" in denied["message"]
    assert f"from the group Guests ({GUESTS}) in Local Security Policy" in denied["fix"]
    assert f"(or take the account out of Guests ({GUESTS}))" in denied["fix"]


def test_a_deny_right_without_the_allow_right_gives_both_findings():
    state = ready_state()
    state["rights"]["SeServiceLogonRight"] = []
    state["rights"]["SeDenyServiceLogonRight"] = [AGENT_SID]
    result = describe(state)
    assert sorted(ids(result)) == ["RIGHT_DENIED", "SERVICE_LOGON_RIGHT_MISSING"]
    assert "(held" not in finding(result, "RIGHT_DENIED")["message"]


def test_the_roles_refusal_of_a_denied_right_keeps_its_id():
    import yaml

    from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils import _role as role

    state = ready_state()
    state["rights"]["SeDenyServiceLogonRight"] = [AGENT_SID]
    values = yaml.safe_load((simworker.REPO_ROOT / "roles" / "deadline_worker_agent_user" / "defaults" / "main.yml").read_text())
    raw = read_agent_info(SimulatedState(copy.deepcopy(state)), {"service": "DeadlineWorker", "config_path": simworker.WORKER_TOML, "account": ""})
    before = agent_rules.result_of(raw)
    refused = role.plan(before, values)["refused"]
    assert [r["id"] for r in refused] == ["RIGHT_DENIED"]
    assert "SeDenyServiceLogonRight" in refused[0]["message"]


@pytest.mark.parametrize(
    ("transform", "named"),
    [
        (lambda data: data.replace(b"\n", b"\r"), "CR-only line endings"),
        (lambda data: data.replace(b"\n[aws]", b"\r[aws]", 1), "a carriage return without a line feed at line"),
    ],
)
def test_lone_carriage_returns_are_named_as_line_endings(transform, named):
    state = ready_state()
    _bytes(transform)(state)
    invalid = finding(describe(state), "CONFIG_INVALID")
    assert named in invalid["message"] and "which TOML does not allow" in invalid["message"]
    assert "is not valid TOML: " in invalid["message"]  # the agent's own words, quoted
    assert invalid["fix"] == "Save worker.toml with CRLF (Windows) or LF line endings."


def test_parse_error_has_line_and_column_and_values_are_what_the_agent_loads():
    state = ready_state()
    ALONE["invalid_toml"][0](state)
    error = describe(state)["config"]["parse_error"]
    assert error["line"] is not None and error["column"] is not None
    state = ready_state()
    _replace_toml("run_jobs_as_agent_user = true", 'run_jobs_as_agent_user = "yes"')(state)
    entries = describe(state)["config"]["entries"]
    assert entries["os"]["run_jobs_as_agent_user"] is True  # pydantic v1 reads "yes" as true
    assert entries["os"]["windows_job_user"] is None
    assert set(entries) == {"worker", "aws", "logging", "os", "telemetry"}


def test_a_key_in_a_capability_table_is_refused_as_the_agent_refuses_it():
    state = ready_state()
    ALONE["appended_opt_in"][0](state)
    result = describe(state)
    assert result["config"]["errors"] == ["capabilities -> attributes -> __key__: Value is not a valid Capability name: run_jobs_as_agent_user"]
    assert result["startup"]["error"].endswith(
        "1 validation error for ConfigFile\ncapabilities -> attributes -> __key__\n  Value is not a valid Capability name: run_jobs_as_agent_user"
    )
    assert "capability names" in finding(result, "CONFIG_INVALID")["fix"]


# ---------------------------------------------------------------------------------------------
# The service account's own user variables (user_environment): machine < user < service


def describe_with_user(state: dict, user_environment: dict | None, drop: bool = False) -> dict:
    raw = read_agent_info(SimulatedState(copy.deepcopy(state)), {"service": "DeadlineWorker", "config_path": simworker.WORKER_TOML, "account": ""})
    raw["service"]["account_sid"] = AGENT_SID
    if drop:
        raw.pop("user_environment", None)
    else:
        raw["user_environment"] = user_environment
    return agent_rules.describe(raw)


@pytest.mark.parametrize("drop", [True, False])
def test_a_reading_without_user_variables_behaves_as_before(drop):
    result = describe_with_user(ready_state(), None, drop=drop)
    assert result["findings"] == [] and result["ready"] is True
    assert result["settings"]["run_jobs_as_agent_user"]["source"] == "file"


def test_a_user_variable_that_turns_the_opt_in_off_is_a_blocker_that_says_it_is_unverified():
    result = describe_with_user(ready_state(), {"DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER": "false"})
    assert result["settings"]["run_jobs_as_agent_user"] == {"value": False, "source": "user", "variable": "DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER"}
    assert sorted(ids(result)) == ["ENV_USER_VARIABLE", "MESSAGE_IS_MISLEADING"]  # the file sets it: the variable is the cause
    user = finding(result, "ENV_USER_VARIABLE")
    assert user["severity"] == "blocker"
    assert "not verified here" in user["message"]
    assert f"HKU\\{AGENT_SID}\\Environment" in user["message"]
    assert "SetEnvironmentVariable('DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER', $null, 'User')" in user["fix"]
    assert f'reg delete "HKU\\{AGENT_SID}\\Environment" /v DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER /f' in user["fix"]
    assert result["environment"]["DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER"] == {"value": "false", "source": "user"}
    assert result["ready"] is False


def test_a_user_variable_that_turns_the_opt_in_on_is_a_warning():
    state = ready_state()
    _replace_toml("run_jobs_as_agent_user = true", "run_jobs_as_agent_user = false")(state)
    result = describe_with_user(state, {"deadline_worker_run_jobs_as_agent_user": "yes"})
    assert result["settings"]["run_jobs_as_agent_user"]["value"] is True
    assert [(f["id"], f["severity"]) for f in result["findings"]] == [("ENV_USER_VARIABLE", "warning")]
    assert result["ready"] is True


def test_a_user_variable_that_sets_a_job_user_is_a_blocker():
    result = describe_with_user(ready_state(), {"DEADLINE_WORKER_WINDOWS_JOB_USER": "job-user"})
    assert sorted(ids(result)) == ["ENV_USER_VARIABLE", "JOB_USER_CONFLICT"]
    assert finding(result, "ENV_USER_VARIABLE")["severity"] == "blocker"
    assert result["startup"]["error"] == agent_startup.JOB_USER_CONFLICT_ERROR


def test_user_variables_rank_between_machine_and_service_variables():
    state = ready_state()
    state["environment"] = {"DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER": "false"}
    result = describe_with_user(state, {"DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER": "true"})
    assert result["settings"]["run_jobs_as_agent_user"]["source"] == "user"  # over the machine's false
    state["services"]["DeadlineWorker"]["environment"].append("DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER=0")
    result = describe_with_user(state, {"DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER": "true"})
    assert result["settings"]["run_jobs_as_agent_user"]["source"] == "service"  # the service's own value wins
    assert "ENV_USER_VARIABLE" not in ids(result)
    override = finding(result, "ENV_OVERRIDE")
    assert "user variable" in override["fix"] and "machine variable" in override["fix"] and "Environment value of" in override["fix"]


def test_ready_and_a_one_line_verdict_come_first():
    result = describe(simworker.example_state())
    assert list(result)[:2] == ["ready", "verdict"]
    assert result["verdict"] == "not ready: 1 blocker (AGENT_OPT_IN_MISSING)"
    state = ready_state()
    state["environment"] = {"DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER": "false"}
    state["services"]["DeadlineWorker"]["environment"].append("DEADLINE_WORKER_WINDOWS_JOB_USER=job-user")
    assert describe(state)["verdict"] == "not ready: 2 blockers (ENV_OVERRIDE)"
    assert describe(ready_state())["verdict"] == "ready: a WORKER_AGENT_USER job would run"
    state = ready_state()
    _admin(state)
    _no_shutdown_right(state)
    assert describe(state)["verdict"] == "ready: a WORKER_AGENT_USER job would run; also 1 security (AGENT_USER_IS_ADMIN)"


def test_every_finding_id_is_documented_where_operators_read_them():
    """An id the rules can return and the module's RETURN does not list is an id no operator can look up."""
    documented = " ".join(yaml.safe_load(worker_agent_info.RETURN)["findings"]["description"])
    listed = set(re.findall(r"V\(([A-Z][A-Z_]+)\)", documented))
    assert {rule.id for rule in agent_rules.RULES} - listed == set()
