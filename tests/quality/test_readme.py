# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""README.md has the sections the inclusion checklist asks for, says what is tested as the test
environments and the CI workflow have it, and names no address but those that exist."""

from __future__ import annotations

import re

import pytest
import simworker
from test_ci_workflow import MATRIX, first_python
from test_cores import NEWEST, OLDEST, REQUIRES_ANSIBLE, _minor

REPO = simworker.REPO_ROOT
README = (REPO / "README.md").read_text(encoding="utf-8")
HEADINGS = re.findall(r"^## (.+)$", README, re.MULTILINE)
# Every address the README may name: public pages that exist, and the placeholder that never resolves.
KNOWN_ADDRESSES = {
    "https://semver.org/",
    "https://docs.ansible.com/projects/antsibull-changelog/",
    "https://docs.ansible.com/ansible/latest/dev_guide/developing_collections.html",
    "https://docs.ansible.com/ansible/latest/community/code_of_conduct.html",
    "https://www.gnu.org/licenses/gpl-3.0.txt",
    "https://repository.invalid/...",
}


@pytest.mark.parametrize(
    "heading", ["Tested ansible-core versions", "Releases and versioning", "Contributing", "Code of conduct", "Support", "Licence"]
)
def test_the_readme_has_the_section(heading):
    assert heading in HEADINGS


def _section(heading: str) -> str:
    return README.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_the_supported_range_is_meta_runtimes():
    assert f'`requires_ansible: "{REQUIRES_ANSIBLE}"`' in README and "no\nupper bound" in README


def test_the_tested_versions_table_is_what_the_environments_and_ci_test():
    rows = re.findall(r"^\| (2\.\d+|devel) \| (3\.\d+) \|", _section("Tested ansible-core versions"), re.MULTILINE)
    cores = [f"2.{minor}" for minor in range(_minor(OLDEST)[1], _minor(NEWEST)[1] + 1)]
    assert [core for core, _python in rows] == [*cores, "devel"]
    for core, python in rows:
        assert python == first_python(NEWEST if core == "devel" else core), (core, python)
    assert [entry["ansible"] for entry in MATRIX] == [f"stable-{core}" if core != "devel" else core for core, _python in rows]


def test_it_says_the_workflows_have_not_run_while_there_is_no_repository():
    galaxy = (REPO / "galaxy.yml").read_text(encoding="utf-8")
    if re.search(r"^repository:", galaxy, re.MULTILINE):
        pytest.skip("galaxy.yml names a repository: whether its workflows ran is for that repository to show")
    assert "**The GitHub workflows have not run.**" in README


def test_the_release_policy_is_semantic_versioning_with_the_changelog():
    policy = _section("Releases and versioning")
    assert "semantic versioning" in policy and "changelogs/fragments/" in policy and "CHANGELOG.md" in policy


def test_the_code_of_conduct_is_ansibles():
    assert "Ansible Community Code of Conduct" in _section("Code of conduct")


def test_the_licence_is_galaxy_ymls():
    assert "GNU General Public License v3.0 or later" in _section("Licence")
    assert "- GPL-3.0-or-later" in (REPO / "galaxy.yml").read_text(encoding="utf-8")


def test_every_address_it_names_exists():
    addresses = set(re.findall(r"https?://[^\s)>`'\"]+", README))
    assert addresses <= KNOWN_ADDRESSES, sorted(addresses - KNOWN_ADDRESSES)
