# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugin_utils is the collection's own code: each of its Python files says it is not a public API."""

from __future__ import annotations

import ast

import pytest
import simworker
import yaml

INTERNAL = "Internal to this collection: not a public API; it may change in any release."
PLUGIN_UTILS = simworker.REPO_ROOT / "plugins" / "plugin_utils"
FILES = sorted(PLUGIN_UTILS.rglob("*.py"))


def test_plugin_utils_has_python_files():
    assert len(FILES) >= 10


@pytest.mark.parametrize("path", FILES, ids=lambda path: str(path.relative_to(PLUGIN_UTILS)))
def test_each_plugin_utils_file_says_it_is_internal(path):
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert docstring is not None and INTERNAL in docstring.splitlines()


def test_every_plugin_utils_module_and_package_is_private_by_name():
    """The inclusion checklist's MUST: plugin_utils meant for no outside use start with an underscore,
    as ansible.windows' _reboot.py and microsoft.ad's _ldap/ do; inside a private package the names are free."""
    assert sorted(entry.name for entry in PLUGIN_UTILS.iterdir() if not entry.name.startswith("_")) == []


# The role's and the playbooks' filters are internal as well: named with an underscore, documented as
# such, and never presented as the collection's API (issue: they were public, and bound by semver).
FILTERS = simworker.REPO_ROOT / "plugins" / "filter"


def _filter_names() -> dict[str, str]:
    names = {}
    for path in sorted(FILTERS.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == "filters":
                returned = next(n for n in ast.walk(node) if isinstance(n, ast.Return))
                names.update({key.value: path.name for key in returned.value.keys})
    return names


def test_every_filter_of_the_collection_is_internal_and_documented_as_such():
    names = _filter_names()
    assert len(names) >= 5, names
    for name, source in names.items():
        assert name.startswith("_"), f"{source}: the filter {name} would be public API"
        doc = yaml.safe_load((FILTERS / f"{name}.yml").read_text(encoding="utf-8"))["DOCUMENTATION"]
        assert doc["name"] == name and doc["short_description"].startswith("Internal to ")
        assert any(INTERNAL_FILTER in line for line in doc["description"]), name
    assert {p.stem for p in FILTERS.glob("*.yml")} == set(names), "a doc without its filter, or a filter without its doc"


INTERNAL_FILTER = "Internal to this collection: not a public API. It is not covered by semantic versioning"


# The collection's own playbooks and their shared files, and the README that names the filters as internal.
PLAYBOOK_FILES = ("playbooks/converge.yml", "playbooks/diagnose.yml", "playbooks/selftest.yml", "playbooks/tasks/summary.yml", "README.md")


def test_no_playbook_or_doc_outside_the_role_uses_an_internal_filter():
    users = []
    for path in simworker.REPO_ROOT.rglob("*"):
        relative = path.relative_to(simworker.REPO_ROOT)
        if not path.is_file() or path.suffix not in (".yml", ".yaml", ".md") or relative.parts[0] in (".venv", ".venv-2.21", ".cache", "tests"):
            continue
        if relative.parts[:2] in (("plugins", "filter"), ("changelogs", "fragments")) or relative.parts[0] == "roles":
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if "deadline_cloud.cmf._" in text and str(relative) not in PLAYBOOK_FILES:
            users.append(str(relative))
    assert users == [], f"internal filters used outside the collection's own role and playbooks: {users}"
