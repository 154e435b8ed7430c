# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugin_utils is the collection's own code: each of its Python files says it is not a public API."""

from __future__ import annotations

import ast

import pytest
import simworker

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
