# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""deadline_cloud.cmf.worker_toml end to end: ansible-playbook against simulated workers, the
state file read afterwards, and every file it wrote read back by the real agent."""

from __future__ import annotations

import agent_truth
import pytest
import simworker

OPT_IN = {
    "settings": [
        {"table": "os", "key": "run_jobs_as_agent_user", "value": True},
        {"table": "os", "key": "windows_job_user", "state": "absent"},
        {"table": "os", "key": "impersonation", "state": "absent"},
    ]
}


def worker(tmp_path, mutate=None, name="worker-01"):
    state = simworker.example_state()
    if mutate:
        mutate(state)
    return simworker.save_state(tmp_path / f"{name}.yml", state)


def play(tmp_path, states: dict, module_args: dict, *args: str, extra_tasks: tuple = ()):
    tasks = [{"name": "Edit worker.toml", "deadline_cloud.cmf.worker_toml": module_args, "register": "edit"}]
    tasks.append(simworker.dump_task(tmp_path, "edit"))
    tasks.extend(extra_tasks)
    playbook = simworker.write_playbook(tmp_path, tasks)
    inventory = simworker.write_inventory(tmp_path, states)
    return simworker.run_playbook(playbook, inventory, *args)


def test_installer_state_converges_in_two_calls_then_one_and_the_agent_reads_the_opt_in(tmp_path):
    state = worker(tmp_path)
    before = simworker.file_bytes(simworker.load_state(state))
    first = play(tmp_path, {"worker-01": state}, OPT_IN)
    assert first.returncode == 0, first.stdout
    result = simworker.read_dump(tmp_path, "edit", "worker-01")
    assert result["changed"] is True
    assert result["previous"] == {"os": {"run_jobs_as_agent_user": None, "windows_job_user": None, "impersonation": None}}
    after = simworker.load_state(state)
    assert after["calls"] == {"read_file": 1, "write_file": 1}
    data = simworker.file_bytes(after)
    assert data == before.replace(b"\n# run_jobs_as_agent_user = true\n", b"\nrun_jobs_as_agent_user = true\n")
    settings = agent_truth.worker_settings(data, tmp_path)
    assert settings.run_jobs_as_agent_user is True
    assert settings.windows_job_user is None

    second = play(tmp_path, {"worker-01": state}, OPT_IN)
    assert second.returncode == 0, second.stdout
    assert simworker.read_dump(tmp_path, "edit", "worker-01")["changed"] is False
    assert simworker.load_state(state)["calls"] == {"read_file": 2, "write_file": 1}


@pytest.mark.parametrize("option", ["config_path", "path"])  # path: the option's former name, an alias
def test_config_path_edits_a_copy_and_leaves_the_agents_file(tmp_path, option):
    copy = r"C:\ProgramData\Amazon\Deadline\Config\worker-copy.toml"

    def with_copy(state):
        simworker.set_file_bytes(state, simworker.file_bytes(state), copy)

    state = worker(tmp_path, with_copy)
    before = simworker.file_bytes(simworker.load_state(state))
    run = play(tmp_path, {"worker-01": state}, {option: copy, "table": "os", "key": "run_jobs_as_agent_user", "value": True})
    assert run.returncode == 0, run.stdout
    result = simworker.read_dump(tmp_path, "edit", "worker-01")
    assert (result["changed"], result["path"]) == (True, copy)
    after = simworker.load_state(state)
    assert simworker.file_bytes(after) == before
    assert b"\nrun_jobs_as_agent_user = true\n" in simworker.file_bytes(after, copy)


def test_check_mode_reports_the_change_with_a_diff_and_writes_nothing(tmp_path):
    state = worker(tmp_path)
    before = simworker.load_state(state)
    result = play(tmp_path, {"worker-01": state}, OPT_IN, "--check", "--diff")
    assert result.returncode == 0, result.stdout
    assert "-# run_jobs_as_agent_user = true\n+run_jobs_as_agent_user = true" in result.stdout
    assert simworker.read_dump(tmp_path, "edit", "worker-01")["changed"] is True
    after = simworker.load_state(state)
    assert simworker.file_bytes(after) == simworker.file_bytes(before)
    assert after["calls"] == {"read_file": 1}


def test_crlf_and_bom_become_crlf_utf8_with_a_warning(tmp_path):
    def crlf_bom(state):
        data = simworker.file_bytes(state).replace(b"\n", b"\r\n")
        simworker.set_file_bytes(state, b"\xef\xbb\xbf" + data)

    state = worker(tmp_path, crlf_bom)
    result = play(tmp_path, {"worker-01": state}, OPT_IN)
    assert result.returncode == 0, result.stdout
    assert "byte order mark" in result.stderr  # Ansible shows the module's warnings
    data = simworker.file_bytes(simworker.load_state(state))
    assert not data.startswith(b"\xef\xbb\xbf")
    assert data.count(b"\n") == data.count(b"\r\n")
    assert agent_truth.worker_settings(data, tmp_path).run_jobs_as_agent_user is True


def test_another_writer_between_read_and_write_fails_the_task_and_keeps_their_file(tmp_path):
    def concurrent(state):
        state["faults"] = {"modify_between_read_and_write": simworker.WORKER_TOML}

    state = worker(tmp_path, concurrent)
    result = play(tmp_path, {"worker-01": state}, OPT_IN)
    assert result.returncode != 0
    assert "worker.toml changed while it was being edited" in result.stdout
    data = simworker.file_bytes(simworker.load_state(state))
    assert data.endswith(b"# edited by another writer\n")
    assert b"\nrun_jobs_as_agent_user = true\n" not in data

    again = play(tmp_path, {"worker-01": state}, OPT_IN)  # the next run applies it on top
    assert again.returncode == 0, again.stdout
    data = simworker.file_bytes(simworker.load_state(state))
    assert b"\nrun_jobs_as_agent_user = true\n" in data and data.endswith(b"# edited by another writer\n")


def test_a_dropped_write_leaves_the_file_whole_and_the_next_run_converges(tmp_path):
    def drop(state):
        state["faults"] = {"fail_next": ["write_file"]}

    state = worker(tmp_path, drop)
    before = simworker.file_bytes(simworker.load_state(state))
    result = play(tmp_path, {"worker-01": state}, OPT_IN)
    assert result.returncode != 0 and "UNREACHABLE" in result.stdout
    assert simworker.file_bytes(simworker.load_state(state)) == before
    again = play(tmp_path, {"worker-01": state}, OPT_IN)
    assert again.returncode == 0, again.stdout
    assert agent_truth.worker_settings(simworker.file_bytes(simworker.load_state(state)), tmp_path).run_jobs_as_agent_user


def test_backup_keeps_a_timestamped_copy_beside_the_file(tmp_path):
    state = worker(tmp_path)
    before = simworker.file_bytes(simworker.load_state(state))
    result = play(tmp_path, {"worker-01": state}, {**OPT_IN, "backup": True})
    assert result.returncode == 0, result.stdout
    backup = simworker.read_dump(tmp_path, "edit", "worker-01")["backup_file"]
    assert backup.startswith(simworker.WORKER_TOML + ".") and backup.endswith(".bak")
    assert simworker.file_bytes(simworker.load_state(state), backup) == before


def test_a_job_user_is_removed_as_a_comment_and_the_agent_no_longer_sees_it(tmp_path):
    def job_user(state):
        data = simworker.file_bytes(state).replace(b'# windows_job_user = "job-user"', b'windows_job_user = "render-job"')
        simworker.set_file_bytes(state, data)

    state = worker(tmp_path, job_user)
    assert agent_truth.worker_settings(simworker.file_bytes(simworker.load_state(state)), tmp_path).windows_job_user == "render-job"
    result = play(tmp_path, {"worker-01": state}, OPT_IN)
    assert result.returncode == 0, result.stdout
    assert simworker.read_dump(tmp_path, "edit", "worker-01")["previous"]["os"]["windows_job_user"] == "render-job"
    data = simworker.file_bytes(simworker.load_state(state))
    assert b'\n# windows_job_user = "render-job"\n' in data
    settings = agent_truth.worker_settings(data, tmp_path)
    assert (settings.run_jobs_as_agent_user, settings.windows_job_user) == (True, None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"table": "os", "key": "run_jobs_as_agent_user", "value": "yes please"}, "[os] run_jobs_as_agent_user takes a boolean"),
        ({"table": "worker", "key": "run_jobs_as_agent_user", "value": True}, "ignores it in [worker]"),
        ({"table": "os", "key": "run_jobs_as_agent_user", "value": True, "state": "enabled"}, "value of state must be one of: present, absent"),
        ({**OPT_IN, "key": "verbose"}, "mutually exclusive"),
        ({"table": "os", "key": "shutdown_on_stop"}, "state present needs a value"),
        ({"path": r"C:\nowhere\worker.toml", "table": "os", "key": "verbose", "value": True}, "does not exist; set create: true"),
    ],
)
def test_bad_input_fails_with_a_clear_message_and_leaves_the_file(tmp_path, args, message):
    state = worker(tmp_path)
    before = simworker.file_bytes(simworker.load_state(state))
    result = play(tmp_path, {"worker-01": state}, args)
    assert result.returncode != 0
    assert message in result.stdout, result.stdout
    assert simworker.file_bytes(simworker.load_state(state)) == before
    assert "write_file" not in (simworker.load_state(state).get("calls") or {})


def test_invalid_toml_fails_with_line_and_column(tmp_path):
    def broken(state):
        simworker.set_file_bytes(state, simworker.file_bytes(state).replace(b"shutdown_on_stop = true", b"shutdown_on_stop = tru"))

    state = worker(tmp_path, broken)
    before = simworker.file_bytes(simworker.load_state(state))
    result = play(tmp_path, {"worker-01": state}, OPT_IN)
    assert result.returncode != 0
    line = before.decode().splitlines().index("shutdown_on_stop = tru") + 1
    assert f"is not valid TOML at line {line}, column" in result.stdout
    assert simworker.file_bytes(simworker.load_state(state)) == before


def test_create_makes_a_missing_file(tmp_path):
    def no_file(state):
        state["files"] = {}

    state = worker(tmp_path, no_file)
    args = {"table": "os", "key": "run_jobs_as_agent_user", "value": True, "create": True, "validate": False}
    result = play(tmp_path, {"worker-01": state}, args)
    assert result.returncode == 0, result.stdout
    assert simworker.file_bytes(simworker.load_state(state)) == b"[os]\nrun_jobs_as_agent_user = true\n"


def test_several_hosts_each_get_their_own_edit(tmp_path):
    states = {f"worker-{n:02d}": worker(tmp_path, name=f"worker-{n:02d}") for n in range(1, 4)}
    result = play(tmp_path, states, OPT_IN)
    assert result.returncode == 0, result.stdout
    for state in states.values():
        after = simworker.load_state(state)
        assert after["calls_total"] == 2
        assert b"\nrun_jobs_as_agent_user = true\n" in simworker.file_bytes(after)
