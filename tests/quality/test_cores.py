# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every supported ansible-core (meta/runtime.yml), each in its own environment .venv-<core> that
scripts/ensure-venv-core.sh makes from requirements-cores.txt: sanity, units and the playbook tests
at the two ends, 2.16 (Python 3.10) and 2.21 (Python 3.12+), in every run; sanity, units and the
service module's async tests on each core between with ``bash tests/run.sh --all-cores``
(DEADLINE_CMF_ALL_CORES=1). .venv's own core (2.19) runs everything in the main test run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import simworker
import yaml
from test_tools import REPO, ansible_test, sanity_ran_every_test

REQUIRES_ANSIBLE = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text(encoding="utf-8"))["requires_ansible"]


def _releases(name: str) -> dict[str, str]:
    """The ansible-core releases a requirements file pins, by core: {"2.16": "2.16.19", ...}."""
    text = (REPO / name).read_text(encoding="utf-8")
    return {core: release for release, core in re.findall(r"^ansible-core==((\d+\.\d+)\.\d+)\s*$", text, re.MULTILINE)}


def _minor(core: str) -> tuple[int, int]:
    major, minor = core.split(".")
    return int(major), int(minor)


RELEASES = _releases("requirements-cores.txt")
((MAIN_CORE, MAIN_RELEASE),) = _releases("requirements-demo.txt").items()  # .venv's, through requirements-test.txt
OLDEST, NEWEST = min(RELEASES, key=_minor), max(RELEASES, key=_minor)
ALL_CORES = os.environ.get("DEADLINE_CMF_ALL_CORES") == "1"
# The cores this run tests besides .venv's: the two ends, or with --all-cores every one.
TESTED = sorted(RELEASES) if ALL_CORES else [OLDEST, NEWEST]
BETWEEN = [core for core in TESTED if core not in (OLDEST, NEWEST)]
# The playbook tests: every module, the role and both playbooks, on simulated workers; the service
# module's tests also hold what its async support relies on (how the task executor treats async_val).
PLAYBOOK_TESTS = [
    "tests/integration/test_role.py",
    "tests/integration/test_playbooks.py",
    "tests/integration/test_worker_agent_service.py",
    "tests/integration/test_module_defaults.py",
    "tests/integration/test_controller_python.py",
    "tests/integration/test_awx.py",  # ansible-runner with this core: an execution environment's core varies
]
# The two that run worker_agent_service under async with a poll above 0 (see its run()).
ASYNC_TESTS = ["tests/integration/test_worker_agent_service.py", "-k", "under_async"]


def core_bin(core: str) -> Path:
    """The bin folder of .venv-<core>: a failure, not a skip, when it is missing (CI's machines have the Pythons)."""
    bin_dir = REPO / f".venv-{core}" / "bin"
    if not (bin_dir / "ansible-playbook").exists():
        flag = " --all-cores" if core in BETWEEN else ""
        pytest.fail(
            f".venv-{core} (ansible-core {core}) is missing: `bash tests/run.sh{flag}` creates it with scripts/ensure-venv-core.sh, "
            f"which needs one of the Pythons ansible-core {core} runs on (see `bash scripts/ensure-venv-core.sh --which {core}`)"
        )
    return bin_dir


def python_version(bin_dir: Path) -> str:
    return subprocess.run(
        [str(bin_dir / "python"), "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()


def test_requires_ansible_is_the_oldest_tested_core_with_no_upper_bound():
    assert f">={OLDEST}.0" == REQUIRES_ANSIBLE
    assert (OLDEST, NEWEST) == ("2.16", "2.21")


def test_every_core_from_the_oldest_to_the_newest_has_a_tested_release():
    wanted = [f"2.{minor}" for minor in range(_minor(OLDEST)[1], _minor(NEWEST)[1] + 1)]
    assert sorted({*RELEASES, MAIN_CORE}, key=_minor) == wanted
    assert RELEASES.get(MAIN_CORE, MAIN_RELEASE) == MAIN_RELEASE  # one release per core


@pytest.mark.parametrize("core", TESTED)
def test_the_environment_holds_its_core_on_the_python_the_script_chose(core):
    bin_dir = core_bin(core)
    version = subprocess.run([str(bin_dir / "ansible"), "--version"], capture_output=True, text=True, check=False, env=simworker.ansible_env()).stdout
    assert re.search(rf"\[core {re.escape(RELEASES[core])}\]", version), version
    chosen = subprocess.run(
        ["bash", "scripts/ensure-venv-core.sh", "--which", core], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert chosen.returncode == 0, chosen.stderr
    wanted = subprocess.run([chosen.stdout.strip(), "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert python_version(bin_dir) == wanted, chosen.stderr


def test_the_oldest_end_runs_python_3_10_where_there_is_one():
    chosen = subprocess.run(["bash", "scripts/ensure-venv-core.sh", "--which", OLDEST], cwd=REPO, capture_output=True, text=True, check=False)
    if "no Python 3.10 found" in chosen.stderr:
        # said once here too, so that a run on 3.11 shows it did not test ansible-core 2.16 on 3.10
        pytest.skip(f".venv-{OLDEST} runs on a newer Python than 3.10, since none is on this machine: {chosen.stderr.strip()}")
    assert python_version(core_bin(OLDEST)) == "3.10"


def _which(core: str, path: Path, **env: str) -> subprocess.CompletedProcess:
    """``ensure-venv-core.sh --which core`` with only ``path`` (and the tools the script uses) on PATH, no pyenv."""
    tools = path / "tools"
    tools.mkdir(exist_ok=True)
    for tool in ("dirname", "tr", "sort"):
        if not (tools / tool).exists():
            (tools / tool).symlink_to(shutil.which(tool))
    env = {"PATH": f"{path}:{tools}", "HOME": str(path), **env}
    command = [shutil.which("bash"), "scripts/ensure-venv-core.sh", "--which", core]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)


def test_the_script_falls_back_to_a_newer_python_saying_so_and_fails_where_none_fits(tmp_path):
    """Only a Python 3.11 on PATH: 2.16 takes it and says so; 2.21 (3.12+) finds none and says what to set."""
    stand_in = tmp_path / "python3.11"
    # answers the script's two questions as a Python 3.11 would: "are you 3.11?" and "where are you?"
    stand_in.write_text("#!/bin/sh\ncase \"$2\" in *\"'3.11'\"*) exit 0 ;; *sys.executable*) echo \"$0\" ;; *) exit 1 ;; esac\n")
    stand_in.chmod(0o755)
    older = _which("2.16", tmp_path)
    assert older.returncode == 0 and older.stdout.strip() == str(stand_in), older
    assert "no Python 3.10 found for .venv-2.16; it uses Python 3.11 instead" in older.stderr, older
    newest = _which("2.21", tmp_path)
    assert newest.returncode == 1 and newest.stdout == "", newest
    assert "no Python for .venv-2.21 found (tried 3.12 3.13 3.14" in newest.stderr and "DEADLINE_CMF_PYTHON_2_21" in newest.stderr, newest
    named = _which("2.21", tmp_path, DEADLINE_CMF_PYTHON_2_21="/opt/python3.12/bin/python3")
    assert named.returncode == 0 and named.stdout.strip() == "/opt/python3.12/bin/python3", named


@pytest.mark.parametrize("core", TESTED)
def test_ansible_test_sanity(tmp_path, core):
    bin_dir = core_bin(core)
    result = ansible_test(tmp_path, "sanity", "--skip-test", "pslint", bin_dir=bin_dir, python=python_version(bin_dir))
    sanity_ran_every_test(result)


@pytest.mark.parametrize("core", TESTED)
def test_ansible_test_units(tmp_path, core):
    bin_dir = core_bin(core)
    result = ansible_test(tmp_path, "units", "--venv", bin_dir=bin_dir, python=python_version(bin_dir))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    passed = re.search(r"(\d+) passed", output)
    assert passed and int(passed.group(1)) >= 250, output[-4000:]


def _pytest_with(core: str, *arguments: str) -> subprocess.CompletedProcess:
    """Tests of this checkout once more, their ansible-playbook taken from .venv-<core>."""
    env = dict(os.environ, CMF_ANSIBLE_BIN=str(core_bin(core)))
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *arguments]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=3000)


@pytest.mark.parametrize("core", [OLDEST, NEWEST])
def test_the_playbook_tests_pass(core):
    result = _pytest_with(core, *PLAYBOOK_TESTS)
    assert result.returncode == 0, (result.stdout + result.stderr)[-8000:]
    assert re.search(r"\d+ passed", result.stdout) and " skipped" not in result.stdout.splitlines()[-1], result.stdout[-2000:]


@pytest.mark.parametrize("core", BETWEEN or [None])
def test_the_service_modules_async_tests_pass(core):
    """worker_agent_service ends an async task itself (see its run()): held on every core (the ends
    run these tests with the other playbook tests above)."""
    if core is None:
        middle = ", ".join(core for core in sorted(RELEASES, key=_minor) if core not in (OLDEST, NEWEST))
        pytest.skip(f"the cores between the ends ({middle}) are tested with `bash tests/run.sh --all-cores` only")
    result = _pytest_with(core, *ASYNC_TESTS)
    assert result.returncode == 0, (result.stdout + result.stderr)[-8000:]
    assert re.search(r"\b2 passed", result.stdout), result.stdout[-2000:]


@pytest.mark.parametrize("core", [OLDEST, NEWEST])
def test_the_playbook_runs_take_their_ansible_from_cmf_ansible_bin(tmp_path, monkeypatch, core):
    """What the tests above rely on: CMF_ANSIBLE_BIN chooses the ansible-playbook that runs."""
    monkeypatch.setenv("CMF_ANSIBLE_BIN", str(core_bin(core)))
    state = simworker.save_state(tmp_path / "worker-01.yml", simworker.example_state())
    inventory = simworker.write_inventory(tmp_path, {"worker-01": state})
    playbook = simworker.write_playbook(tmp_path, [{"ansible.builtin.debug": {"msg": "core {{ ansible_version.full }}"}}])
    result = simworker.run_playbook(playbook, inventory)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f'"msg": "core {RELEASES[core]}"' in result.stdout, result.stdout
