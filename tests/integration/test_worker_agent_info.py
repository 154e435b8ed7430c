# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""deadline_cloud.cmf.worker_agent_info through ansible-playbook on simulated workers."""

from __future__ import annotations

import subprocess

import simworker

TOML = simworker.WORKER_TOML
OPT_IN = "run_jobs_as_agent_user = true\n"


def _with_opt_in(state: dict) -> dict:
    text = simworker.file_bytes(state).decode()
    return simworker.set_file_bytes(state, text.replace("[os]\n", "[os]\n" + OPT_IN, 1).encode())


def _run_info(tmp_path, states: dict[str, dict], *args: str, task: dict | None = None):
    paths = {name: simworker.save_state(tmp_path / f"{name}.yml", state) for name, state in states.items()}
    inventory = simworker.write_inventory(tmp_path, paths)
    playbook = simworker.write_playbook(
        tmp_path,
        [
            {"name": "Read the agent", "deadline_cloud.cmf.worker_agent_info": task or {}, "register": "agent"},
            {**simworker.dump_task(tmp_path, "agent"), "check_mode": False},
        ],
    )
    run = simworker.run_playbook(playbook, inventory, *args, env=simworker.ansible_env())
    assert run.returncode == 0, run.stdout + run.stderr
    return {name: simworker.read_dump(tmp_path, "agent", name) for name in states}, paths


def _ids(result: dict) -> list[str]:
    return [f["id"] for f in result["findings"]]


def test_a_quick_look_shows_the_verdict_and_the_findings_within_a_screen(tmp_path):
    # Ansible prints a result with its keys sorted: only a short result keeps ready near the top.
    path = simworker.save_state(tmp_path / "worker-01.yml", simworker.example_state())
    inventory = simworker.write_inventory(tmp_path, {"worker-01": path})
    command = [str(simworker.ansible_bin() / "ansible"), "-i", str(inventory), "worker-01", "-m", "deadline_cloud.cmf.worker_agent_info"]
    run = subprocess.run(command, capture_output=True, text=True, env=simworker.ansible_env(), check=False, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "worker-01 | SUCCESS => {"
    position = {key: n for n, line in enumerate(lines) for key in ("ready", "verdict", "findings", "reading") if line.startswith(f'    "{key}"')}
    assert "reading" not in position
    assert position["findings"] < position["ready"] < 70, run.stdout  # it was line 331 of 373 with the details
    assert lines[position["ready"]] == '    "ready": false,'
    assert lines[position["verdict"]] == '    "verdict": "not ready: 1 blocker (AGENT_OPT_IN_MISSING)"'
    assert len(lines) < 120, len(lines)
    assert not any(key in run.stdout for key in ('"effective_rights"', '"entries"')), run.stdout


def test_details_add_the_reading_the_effective_rights_and_the_entries(tmp_path):
    results, _paths = _run_info(tmp_path, {"worker-01": simworker.example_state()})
    short = results["worker-01"]
    assert "reading" not in short and "effective_rights" not in short["account"] and "entries" not in short["config"]
    assert short["account"]["rights"] == ["SeAssignPrimaryTokenPrivilege", "SeServiceLogonRight"]


def test_installer_state_is_not_ready_for_the_reasons_the_agent_has(tmp_path):
    results, paths = _run_info(tmp_path, {"worker-01": simworker.example_state()}, task={"details": True})
    agent = results["worker-01"]
    assert agent["changed"] is False
    assert agent["ready"] is False
    assert _ids(agent) == ["AGENT_OPT_IN_MISSING", "AGENT_USER_IS_ADMIN", "MESSAGE_IS_MISLEADING"]
    severities = {f["id"]: f["severity"] for f in agent["findings"]}
    assert severities == {"AGENT_OPT_IN_MISSING": "blocker", "AGENT_USER_IS_ADMIN": "security", "MESSAGE_IS_MISLEADING": "info"}
    assert agent["agent"]["version"] == "0.33.2"
    assert agent["service"] == {
        "name": "DeadlineWorker",
        "exists": True,
        "state": "running",
        "start_mode": "auto",
        "account": ".\\deadline-worker",
        "environment": ["AWS_DEFAULT_REGION=us-west-2"],
        "pid": None,
        # the example gives no start time: the service has run since before anything was written
        "started_at": "2000-01-01T00:00:00.000000+00:00",
        # its account is in Administrators, so the token its process started with holds the group too
        "token_administrators": True,
    }
    account = agent["account"]
    assert account["sid"] == "S-1-5-21-3623811015-3361044348-30300820-1001"
    assert {"name": "Administrators", "sid": "S-1-5-32-544"} in account["groups"]
    assert account["rights"] == ["SeAssignPrimaryTokenPrivilege", "SeServiceLogonRight"]
    assert account["effective_rights"]["SeShutdownPrivilege"] == {
        "direct": False,
        "groups": [{"name": "Administrators", "sid": "S-1-5-32-544"}],
        "denied": False,
    }
    config = agent["config"]
    assert (config["path"], config["exists"], config["encoding"], config["parse_error"]) == (TOML, True, "utf-8", None)
    assert config["entries"]["os"]["shutdown_on_stop"] is True
    assert config["entries"]["os"]["run_jobs_as_agent_user"] is None
    assert config["entries"]["worker"]["farm_id"] == "farm-0123456789abcdef0123456789abcdef"
    assert agent["environment"] == {}
    assert agent["settings"]["run_jobs_as_agent_user"] == {"value": False, "source": "default", "variable": None}
    assert agent["startup"]["starts"] is True
    state = simworker.load_state(paths["worker-01"])
    assert state["calls"] == {"read_agent_info": 1}  # one remote call, nothing else


def test_check_mode_reads_the_same_in_one_call(tmp_path):
    results, paths = _run_info(tmp_path, {"worker-01": simworker.example_state()}, "--check")
    assert _ids(results["worker-01"])[0] == "AGENT_OPT_IN_MISSING"
    assert simworker.load_state(paths["worker-01"])["calls_total"] == 1


def test_hosts_with_different_problems(tmp_path):
    converged = _with_opt_in(simworker.example_state())
    admins = converged["accounts"]["S-1-5-32-544"]["members"]
    admins.remove("S-1-5-21-3623811015-3361044348-30300820-1001")
    converged["rights"]["SeShutdownPrivilege"].append("S-1-5-21-3623811015-3361044348-30300820-1001")

    env_override = _with_opt_in(simworker.example_state())
    env_override["environment"] = {"DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER": "0"}

    bom = simworker.example_state()
    simworker.set_file_bytes(bom, b"\xef\xbb\xbf" + simworker.file_bytes(bom))

    broken = simworker.example_state()
    simworker.set_file_bytes(broken, b"[worker]\nfarm_id = \n")

    old = _with_opt_in(simworker.example_state())
    old["agent"]["version"] = "0.27.2"

    results, _paths = _run_info(
        tmp_path,
        {"converged": converged, "env": env_override, "bom": bom, "broken": broken, "old": old},
    )
    assert results["converged"]["ready"] is True
    assert results["converged"]["findings"] == []

    env = results["env"]
    # the file sets the opt-in, the machine variable turns it off: that is the cause named, not its consequence
    assert _ids(env) == ["ENV_OVERRIDE", "AGENT_USER_IS_ADMIN", "MESSAGE_IS_MISLEADING"]
    assert env["environment"] == {"DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER": {"value": "0", "source": "machine"}}
    override = next(f for f in env["findings"] if f["id"] == "ENV_OVERRIDE")
    assert "DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER" in override["fix"] and "reboot" in override["fix"]

    assert results["bom"]["config"]["encoding"] == "utf-8-bom"
    assert "CONFIG_ENCODING" in _ids(results["bom"])
    assert results["bom"]["startup"]["error"].endswith("is not valid TOML: Invalid statement (at line 1, column 1)")

    parse_error = results["broken"]["config"]["parse_error"]
    assert (parse_error["line"], parse_error["column"]) == (2, 11)
    assert "CONFIG_INVALID" in _ids(results["broken"])
    assert results["broken"]["settings"] is None

    old_findings = {f["id"]: f for f in results["old"]["findings"]}
    assert "crashes" in old_findings["AGENT_VERSION_UNSUPPORTED"]["message"]
    assert results["old"]["ready"] is False


def test_a_missing_service_and_an_unknown_account(tmp_path):
    state = simworker.example_state()
    results, _paths = _run_info(tmp_path, {"worker-01": state}, task={"service": "NoSuchService", "account": "nobody"})
    agent = results["worker-01"]
    assert agent["service"]["exists"] is False
    assert agent["account"] is None
    assert agent["account_error"]["code"] == "ACCOUNT_NOT_FOUND"
    assert "SERVICE_MISSING" in _ids(agent)
    assert agent["ready"] is False
