# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The changelog as antsibull-changelog keeps it: fragments and changelog.yaml pass its lint (offline),
and CHANGELOG.md is what it generates from changelogs/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import simworker

REPO = simworker.REPO_ROOT
CHANGELOG = Path(sys.executable).parent / "antsibull-changelog"


def changelog(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([str(CHANGELOG), *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def copy_for_lint(target: Path) -> Path:
    """galaxy.yml and changelogs/ (with the plugin cache, so nothing asks ansible-doc) in a folder of their own."""
    shutil.copy2(REPO / "galaxy.yml", target / "galaxy.yml")
    shutil.copytree(REPO / "changelogs", target / "changelogs")
    return target


def test_fragments_and_changelog_yaml_pass_antsibull_changelog_lint():
    lint = changelog("lint")
    assert lint.returncode == 0 and lint.stdout.strip() == "", lint.stdout + lint.stderr
    yaml_lint = changelog("lint-changelog-yaml", "changelogs/changelog.yaml")
    assert yaml_lint.returncode == 0 and yaml_lint.stdout.strip() == "", yaml_lint.stdout + yaml_lint.stderr


def test_lint_refuses_a_fragment_in_an_unknown_section(tmp_path):
    copy = copy_for_lint(tmp_path)
    (copy / "changelogs" / "fragments" / "typo.yml").write_text("minor_change:\n  - worker_toml - a section name with a typo.\n")
    lint = changelog("lint", cwd=copy)
    assert lint.returncode != 0
    assert "typo.yml" in lint.stdout + lint.stderr


def test_changelog_md_is_generated_from_changelogs(tmp_path):
    generated = tmp_path / "CHANGELOG.md"
    run = changelog("generate", "--output", str(generated), "--output-format", "md")
    assert run.returncode == 0, run.stdout + run.stderr
    assert (REPO / "CHANGELOG.md").read_text(encoding="utf-8") == generated.read_text(encoding="utf-8"), (
        "CHANGELOG.md is not what antsibull-changelog generates: run antsibull-changelog generate"
    )
