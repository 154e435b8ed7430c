# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ansible-test windows-integration targets (tests/integration/targets/) run here, unchanged, on a
simulated worker whose state already holds what their Windows setup would create; and ansible-test
lists them from the collection laid out as ansible_collections/deadline_cloud/cmf."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import simworker
import yaml

TARGETS_DIR = simworker.REPO_ROOT / "tests" / "integration" / "targets"
TARGETS = ["win_group_member", "win_user_rights", "worker_agent_info", "worker_agent_service", "worker_toml"]
MACHINE = "S-1-5-21-3623811015-3361044348-30300820"
# The local users and group the Windows setups create, at RIDs the example state leaves free.
PREPARED_ACCOUNTS = {
    "win_user_rights_user": ("user", 1101),
    "win_group_member_user": ("user", 1102),
    "win_group_member_group": ("group", 1103),
    "worker_agent_info_user": ("user", 1104),
}


def target_defaults(target: str) -> dict[str, str]:
    """A target's defaults/main.yml, with the one form of templating they use (another default's value)."""
    raw = yaml.safe_load((TARGETS_DIR / target / "defaults" / "main.yml").read_text(encoding="utf-8"))
    return {
        name: re.sub(r"\{\{ (\w+) \}\}", lambda m: str(raw[m.group(1)]), value) if isinstance(value, str) else value
        for name, value in raw.items()
    }


def prepared_state() -> dict:
    """The installer's state plus what each target's setup_windows.yml makes on a real host."""
    state = simworker.example_state()
    defaults = {name: value for target in TARGETS for name, value in target_defaults(target).items()}
    for variable, (kind, rid) in PREPARED_ACCOUNTS.items():
        entry: dict = {"name": defaults[variable], "type": kind}
        if kind == "group":
            entry["members"] = []
        else:
            entry["enabled"] = False
        state["accounts"][f"{MACHINE}-{rid}"] = entry
    for target in ("worker_toml", "worker_agent_info"):
        data = (TARGETS_DIR / target / "files" / "worker.toml").read_bytes()
        if target == "worker_toml":
            data = data.replace(b"\n", b"\r\n")  # as its setup_windows.yml copies it
        simworker.set_file_bytes(state, data, defaults[f"{target}_config"])
    return state


def run_target(tmp_path: Path, target: str, state: dict, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    path = simworker.save_state(tmp_path / "worker-01.yml", state)
    inventory = simworker.write_inventory(tmp_path, {"worker-01": path})
    playbook = simworker.write_playbook(
        tmp_path, [{"name": f"Run the target {target}", "ansible.builtin.include_role": {"name": target}}]
    )
    run = simworker.run_playbook(playbook, inventory, *args, env=simworker.ansible_env(ANSIBLE_ROLES_PATH=str(TARGETS_DIR)))
    return run, simworker.load_state(path)


def _recap(run: subprocess.CompletedProcess) -> dict[str, int]:
    match = re.search(r"worker-01\s+:\s+(.*)$", run.stdout, re.MULTILINE)
    assert match, run.stdout + run.stderr
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", match.group(1))}


def _assertions_passed(run: subprocess.CompletedProcess) -> list[str]:
    """The names of the assert tasks that ran and passed."""
    return re.findall(r"TASK \[[^\]]*?(Check [^\]]*)\] \*+\nok: \[worker-01\]", run.stdout)


def test_the_targets_are_exactly_the_module_files():
    modules = sorted(p.stem for p in (simworker.REPO_ROOT / "plugins" / "modules").glob("*.py") if p.stem != "worker_selftest")
    assert sorted(p.name for p in TARGETS_DIR.iterdir() if p.is_dir()) == modules == TARGETS
    for target in TARGETS:
        assert (TARGETS_DIR / target / "aliases").read_text().split() == ["windows", "shippable/windows/group1"]
        assert not list((TARGETS_DIR / target).rglob("*.py")), "pytest collects .py files under tests/integration"


@pytest.mark.parametrize("target", TARGETS)
def test_target_passes_on_a_simulated_worker(tmp_path, target):
    run, after = run_target(tmp_path, target, prepared_state())
    recap = _recap(run)
    assert run.returncode == 0 and recap["failed"] == 0, run.stdout[-6000:] + run.stderr
    passed = _assertions_passed(run)
    assert passed, run.stdout[-6000:]
    if target == "worker_agent_service":
        assert passed == ["Check the refusal", "Check that nothing changed"]  # started only: no restart
        assert after["services"]["DeadlineWorker"]["restarts"] == 0
        assert "control_service" in after["calls"]


def test_the_target_leaves_the_user_without_the_test_right(tmp_path):
    run, after = run_target(tmp_path, "win_user_rights", prepared_state())
    assert run.returncode == 0, run.stdout[-6000:]
    sid = f"{MACHINE}-{PREPARED_ACCOUNTS['win_user_rights_user'][1]}"
    assert sid not in (after["rights"].get("SeBatchLogonRight") or [])
    # grant, again, revoke, again: the unknown right is refused on the controller, before any call
    assert after["calls"]["set_user_rights"] == 4


def test_worker_agent_service_restarts_only_when_allowed(tmp_path):
    run, after = run_target(tmp_path, "worker_agent_service", prepared_state(), "-e", "worker_agent_service_allow_restart=true")
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr
    assert "Check the restart" in _assertions_passed(run)
    assert after["services"]["DeadlineWorker"]["restarts"] == 1


def test_a_state_without_the_prepared_user_fails_the_target_with_the_reason(tmp_path):
    run, _after = run_target(tmp_path, "win_user_rights", simworker.example_state())
    assert run.returncode != 0
    assert "the simulated worker's state must hold the user cmf-it-rights" in run.stdout


def test_ansible_test_lists_the_windows_targets(tmp_path):
    root = simworker.copy_collection(tmp_path)
    env = simworker.ansible_env()
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)
    command = [str(Path(sys.executable).parent / "ansible-test"), "windows-integration", "--list-targets", "--color", "no"]
    listed = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert sorted(listed.stdout.split()) == TARGETS
