# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A controller that lacks the TOML parser (Python 3.10 without tomli) fails the task that reads
worker.toml, naming the package, before any change."""

from __future__ import annotations

import simworker


def test_without_tomllib_and_tomli_reading_worker_toml_fails_naming_tomli(tmp_path):
    # Packages first on PYTHONPATH that refuse to import stand for a Python that has neither.
    for name in ("tomllib", "tomli"):
        (tmp_path / "bare" / name).mkdir(parents=True)
        (tmp_path / "bare" / name / "__init__.py").write_text(f'raise ImportError("no {name} on this controller")\n')
    before = simworker.example_state()
    path = simworker.save_state(tmp_path / "worker-01.yml", before)
    inventory = simworker.write_inventory(tmp_path, {"worker-01": path})
    playbook = simworker.write_playbook(
        tmp_path,
        [
            {"deadline_cloud.cmf.worker_agent_info": {}, "register": "info", "ignore_errors": True},
            {"deadline_cloud.cmf.worker_toml": {"table": "os", "key": "run_jobs_as_agent_user", "value": True}, "register": "toml", "ignore_errors": True},
            {**simworker.dump_task(tmp_path, "info"), "check_mode": False},
            {**simworker.dump_task(tmp_path, "toml"), "check_mode": False},
        ],
    )
    # (only the YAML inventory plugin: ansible-core's toml inventory plugin would need tomllib itself)
    env = simworker.ansible_env(PYTHONPATH=str(tmp_path / "bare"), ANSIBLE_INVENTORY_ENABLED="ansible.builtin.yaml")
    run = simworker.run_playbook(playbook, inventory, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    for var in ("info", "toml"):
        result = simworker.read_dump(tmp_path, var, "worker-01")
        assert result["failed"] is True and result["changed"] is False, result
        # the module's own failure, not an exception that Ansible reports as "Task failed: ..." with a traceback
        assert result["msg"].startswith("reading worker.toml on Python 3.10 needs the Python package tomli on the controller"), result
        assert "pip install -r requirements.txt" in result["msg"], result["msg"]
    assert simworker.file_bytes(simworker.load_state(path)) == simworker.file_bytes(before)
