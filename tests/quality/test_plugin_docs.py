# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What each plugin's documentation promises a reader beyond its options: what it needs, who wrote
it, and, for the two account modules, how they differ from ansible.windows' own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import simworker
import yaml

REPO = simworker.REPO_ROOT
AUTHORS = ["Contributors to deadline_cloud.cmf"]  # as the copyright notices name them; no person, no handle


def documentation(path: Path) -> dict:
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and [target.id for target in node.targets if isinstance(target, ast.Name)] == ["DOCUMENTATION"]:
            return yaml.safe_load(ast.literal_eval(node.value))
    raise AssertionError(f"{path} has no DOCUMENTATION")


PLUGINS = {path.stem: path for path in sorted((REPO / "plugins" / "modules").glob("*.py")) if path.stem != "__init__"}
PLUGINS["simulated_worker"] = REPO / "plugins" / "connection" / "simulated_worker.py"
# What each needs besides ansible-core, read from its imports: tomlkit where worker.toml is edited,
# tomli on Python 3.10 where it is parsed, ansible.windows for the PowerShell operations on a real
# worker, boto3 for the optional API check, ruamel.yaml for the simulated worker's state files.
NEEDS = {
    "worker_toml": ["tomlkit", "tomli", "ansible.windows"],
    "worker_agent_info": ["tomli", "ansible.windows"],
    "worker_agent_service": ["tomli", "ansible.windows", "boto3"],
    "worker_selftest": ["ansible.windows"],
    "win_user_rights": ["ansible.windows"],
    "win_group_member": ["ansible.windows"],
    "simulated_worker": ["ruamel.yaml", "tomli"],
}
# The requirement files a user installs from: requirements.txt, and any of its own a part needs
# (the simulated worker's may live in one); the test environments' pins are not what users get.
USER_REQUIREMENTS = "".join(
    path.read_text(encoding="utf-8") for path in sorted(REPO.glob("requirements*.txt"))
    if path.name
    not in ("requirements-test.txt", "requirements-demo.txt", "requirements-cores.txt", "requirements-certification.txt", "requirements-playbook-tests.txt")
)


def test_every_plugin_is_in_the_table():
    assert sorted(PLUGINS) == sorted(NEEDS)


def _kind(requirement: str) -> str:
    """What one line of a plugin's requirements is about: a Python package (its first word), the
    collection ansible.windows, or boto3 (optional, its line says so first)."""
    if requirement.startswith("The collection ansible.windows "):
        return "ansible.windows"
    if requirement.startswith("Optional") and "boto3" in requirement:
        return "boto3"
    return requirement.split(maxsplit=1)[0]


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_requirements_name_what_the_plugin_needs_and_nothing_else(name):
    requirements = documentation(PLUGINS[name]).get("requirements")
    assert isinstance(requirements, list) and all(isinstance(line, str) for line in requirements), requirements
    assert [_kind(line) for line in requirements] == NEEDS[name]


@pytest.mark.parametrize("need", ["tomlkit", "tomli", "ruamel.yaml"])
def test_what_the_docs_require_on_the_controller_is_in_a_requirements_file_with_the_same_floor(need):
    lines = [line for path in PLUGINS.values() for line in documentation(path).get("requirements", []) if line.startswith(f"{need} ")]
    floor = {line.split()[2] for line in lines}
    assert len(floor) == 1, lines
    assert f"{need}>={floor.pop()}" in USER_REQUIREMENTS.replace(" ", "")


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_the_author_is_the_projects_contributors(name):
    # validate-modules takes an author only with a GitHub handle or the !UNKNOWN marker: there is no handle to name
    assert documentation(PLUGINS[name])["author"] == [f"{author} (!UNKNOWN)" for author in AUTHORS]


def test_galaxy_and_the_role_name_the_same_authors():
    assert yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8"))["authors"] == AUTHORS
    meta = yaml.safe_load((REPO / "roles" / "deadline_worker_agent_user" / "meta" / "main.yml").read_text(encoding="utf-8"))
    assert [meta["galaxy_info"]["author"]] == AUTHORS


@pytest.mark.parametrize(
    ("name", "theirs"), [("win_user_rights", "ansible.windows.win_user_right"), ("win_group_member", "ansible.windows.win_group_membership")]
)
def test_the_account_modules_say_how_they_differ_from_ansible_windows_and_when_to_use_which(name, theirs):
    doc = documentation(PLUGINS[name])
    (seealso,) = [entry for entry in doc["seealso"] if entry.get("module") == theirs]
    assert "This module" in seealso["description"]
    notes = " ".join(doc["notes"])
    assert f"Use M({theirs}) to" in notes and "use this module to" in notes, notes
    assert "by SID" in notes and "one remote call" in notes and "simulated worker" in notes, notes
