# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The molecule scenarios under extensions/molecule, run with molecule's default (delegated) driver."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import simworker

BIN = Path(sys.executable).parent


def run_ansible_home(ephemeral: Path) -> Path:
    """The run's own ANSIBLE_HOME, into which molecule's prerun installs the collection (not the
    user's ~/.ansible); beside the ephemeral folder, which molecule empties when it destroys."""
    return ephemeral.with_name(f"{ephemeral.name}-ansible-home")


def molecule(scenario: str, ephemeral: Path, *, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    command = BIN / "molecule"
    if not command.exists():
        found = shutil.which("molecule")
        if not found:
            pytest.fail("molecule is not installed beside this Python (requirements-test.txt installs it)")
        command = Path(found)
    env = simworker.ansible_env(**(extra_env or {}))
    env["ANSIBLE_COLLECTIONS_PATH"] = str(simworker.collections_root())
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # molecule runs ansible-playbook by name
    env["NO_COLOR"] = "1"
    # a folder of this run's own: two runs of the scenario at once must not share state files
    env["MOLECULE_EPHEMERAL_DIRECTORY"] = str(ephemeral)
    env["ANSIBLE_HOME"] = str(run_ansible_home(ephemeral))
    env["ANSIBLE_LOCAL_TEMP"] = str(run_ansible_home(ephemeral) / "tmp")
    env["MOLECULE_NO_LOG"] = "false"
    return subprocess.run(
        [str(command), "test", "-s", scenario],
        cwd=simworker.REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def installed_in_users_home() -> float | None:
    """When a copy of the collection was last installed into the user's own ~/.ansible, if ever."""
    copy = Path.home() / ".ansible" / "collections" / "ansible_collections" / "deadline_cloud" / "cmf"
    return copy.stat().st_mtime if copy.exists() else None


def test_default_scenario_converges_three_simulated_workers_idempotently(tmp_path):
    before = installed_in_users_home()
    run = molecule("default", tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    summary = [line for line in output.splitlines() if line.startswith("default > ")]
    for step in ("create", "converge", "idempotence", "verify"):
        assert f"default > {step}: Executed: Successful" in summary, summary
    # molecule installed the collection into the run's own ANSIBLE_HOME, not the user's home
    assert (run_ansible_home(tmp_path) / "collections" / "ansible_collections" / "deadline_cloud" / "cmf" / "MANIFEST.json").exists()
    assert installed_in_users_home() == before


def test_windows_scenario_runs_against_a_real_host_when_one_is_given(tmp_path):
    if not os.environ.get("DEADLINE_CMF_WINDOWS_HOST"):
        pytest.skip(
            "windows scenario: DEADLINE_CMF_WINDOWS_HOST is not set (see extensions/molecule/windows/README.md)"
        )
    run = molecule("windows", tmp_path)
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
