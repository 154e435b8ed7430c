# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The newest supported ansible-core (meta/runtime.yml's upper bound) as well as the oldest: sanity
and the playbook tests again, with the second environment tests/run.sh makes (.venv-2.21)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import simworker
from test_tools import REPO, _sanity

NEWEST_VENV = REPO / os.environ.get("DEADLINE_CMF_NEWEST_VENV", ".venv-2.21")
NEWEST_CORE = "2.21"
# The playbook tests: every module, the role and both playbooks, on simulated workers; and the
# service module, whose async support relies on how the task executor treats async_val after a run.
PLAYBOOK_TESTS = [
    "tests/integration/test_role.py",
    "tests/integration/test_playbooks.py",
    "tests/integration/test_worker_agent_service.py",
    "tests/integration/test_awx.py",  # through the newest ansible-runner too: an execution environment's core varies
]


@pytest.fixture(scope="module")
def newest_bin() -> Path:
    """The bin folder of the venv with the newest ansible-core: a failure, not a skip, when it is
    missing (CI's machines have Python 3.12)."""
    bin_dir = NEWEST_VENV / "bin"
    if not (bin_dir / "ansible-playbook").exists():
        pytest.fail(
            f"{NEWEST_VENV.name} (ansible-core {NEWEST_CORE}) is missing: tests/run.sh creates it with Python 3.12 or 3.13 "
            "(python3.12 or python3.13 on PATH, or pyenv's); install one, or name one with PYTHON_NEWEST=/path/to/python3.12"
        )
    version = subprocess.run(
        [str(bin_dir / "ansible"), "--version"], capture_output=True, text=True, check=False, env=simworker.ansible_env()
    ).stdout
    assert re.search(rf"\[core {re.escape(NEWEST_CORE)}\.\d+\]", version), version
    return bin_dir


def newest_python(bin_dir: Path) -> str:
    return subprocess.run(
        [str(bin_dir / "python"), "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()


def test_ansible_test_sanity_on_the_newest_ansible_core(tmp_path, newest_bin):
    result, ran = _sanity(tmp_path, "--skip-test", "pslint", bin_dir=newest_bin, python=newest_python(newest_bin))
    assert result.returncode == 0, (result.stdout + result.stderr)[-8000:]
    assert len(ran) >= 20, ran


def test_playbook_tests_pass_on_the_newest_ansible_core(newest_bin):
    """The playbook tests once more, their ansible-playbook taken from the newest venv."""
    env = dict(os.environ, CMF_ANSIBLE_BIN=str(newest_bin))
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x", *PLAYBOOK_TESTS]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=3000)
    assert result.returncode == 0, (result.stdout + result.stderr)[-8000:]
    assert re.search(r"\d+ passed", result.stdout), result.stdout[-2000:]


def test_the_playbook_runs_take_their_ansible_from_cmf_ansible_bin(tmp_path, newest_bin, monkeypatch):
    """What the test above relies on: CMF_ANSIBLE_BIN chooses the ansible-playbook that runs."""
    monkeypatch.setenv("CMF_ANSIBLE_BIN", str(newest_bin))
    state = simworker.save_state(tmp_path / "worker-01.yml", simworker.example_state())
    inventory = simworker.write_inventory(tmp_path, {"worker-01": state})
    playbook = simworker.write_playbook(tmp_path, [{"ansible.builtin.debug": {"msg": "core {{ ansible_version.full }}"}}])
    result = simworker.run_playbook(playbook, inventory)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f'"msg": "core {NEWEST_CORE}.' in result.stdout, result.stdout
