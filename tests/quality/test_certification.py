# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the Ansible package's inclusion review and Red Hat's certification checks run on the
collection, each at the version .venv holds and at the version the certification pins
(.venv-certification, requirements-certification.txt): ansible-lint as they run it, plain from a
checkout; galaxy-importer on the built tarball; and antsibull-docs, which renders the plugins'
documentation for docs.ansible.com."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import simworker
from test_tools import BIN, REPO, run

CERTIFICATION_BIN = REPO / ".venv-certification" / "bin"
# Galaxy refuses a collection without a repository address, and this one has no public repository yet
# (galaxy.yml leaves the field out rather than name one that does not exist): ansible-lint 24.12's
# galaxy schema and galaxy-importer check it as it is, where they must fail on that alone, and then a
# copy given this placeholder (RFC 2606: .invalid never resolves), so that every other check still
# runs. It never ships.
PLACEHOLDER_REPOSITORY = "https://repository.invalid/deadline_cloud/cmf"
GALAXY = (REPO / "galaxy.yml").read_text(encoding="utf-8")
HAS_REPOSITORY = re.search(r"^repository:", GALAXY, re.MULTILINE) is not None


def tools_bin(version: str) -> Path:
    """The bin folder holding a tool at ``version``: .venv's own, or .venv-certification's (a failure when missing)."""
    if version == "certification":
        if not (CERTIFICATION_BIN / "ansible-lint").exists():
            pytest.fail(".venv-certification is missing: `bash tests/run.sh` creates it (scripts/ensure-venv-core.sh certification)")
        return CERTIFICATION_BIN
    return BIN


def tool_version(bin_dir: Path, package: str) -> str:
    code = f"from importlib.metadata import version; print(version({package!r}))"
    return subprocess.run([str(bin_dir / "python"), "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def checkout(tmp_path: Path, *, placeholder: bool = False) -> Path:
    """A git checkout of this repository as it stands (tracked and new files), as CI clones it."""
    root = tmp_path / "checkout"
    for name in simworker.tracked_files():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, root / name)
    if placeholder:
        (root / "galaxy.yml").write_text(f"{GALAXY.rstrip()}\nrepository: {PLACEHOLDER_REPOSITORY}\n", encoding="utf-8")
    for command in (["init", "-q"], ["add", "-A"]):
        subprocess.run(["git", *command], cwd=root, check=True, capture_output=True)
    return root


def plain_env(home: Path, bin_dir: Path) -> dict:
    """The environment of a user's shell: no ANSIBLE_* setting (no collections path), a home of its own."""
    home.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "AWS_"))}
    env.update(HOME=str(home), PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}")
    return env


def home_with_ansible_windows(tmp_path: Path) -> Path:
    """A home where ansible.windows is installed (~/.ansible/collections), as `ansible-galaxy collection
    install ansible.windows` leaves it. .venv-certification holds ansible-core 2.16 alone, as the
    certification check installs it; without Galaxy, ansible.windows comes from .venv's `ansible` package."""
    home = tmp_path / "home"
    shutil.copytree(_ansible_windows_source(), home / ".ansible" / "collections" / "ansible_collections" / "ansible" / "windows")
    return home


def _ansible_windows_source() -> Path:
    source = BIN.parent / f"lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages/ansible_collections/ansible/windows"
    assert (source / "MANIFEST.json").exists(), f"the `ansible` package in .venv no longer brings ansible.windows at {source}"
    return source


def ansible_lint(bin_dir: Path, root: Path, home: Path) -> tuple[subprocess.CompletedProcess, list[str]]:
    """`ansible-lint --profile production` in the checkout, as the certification check runs it; its violations."""
    result = run([str(bin_dir / "ansible-lint"), "--nocolor", "--profile", "production", "-f", "pep8"], cwd=root, env=plain_env(home, bin_dir))
    # pep8 format, one per line: path:line: rule: message (24.12 leaves rich's "[/]" closing tags in)
    violations = [line.replace("[/]", "") for line in result.stdout.splitlines() if re.match(r"[^\s:]+:\d+", line)]
    return result, violations


def test_ansible_lint_as_the_certification_runs_it(tmp_path):
    """ansible-lint 26.10.1, plain: it installs the collection from the checkout into .ansible/ and
    finds ansible.windows where it is installed (here the `ansible` package), with no Galaxy."""
    assert "offline" not in (REPO / ".ansible-lint").read_text(encoding="utf-8")
    root = checkout(tmp_path)
    result, violations = ansible_lint(BIN, root, tmp_path / "home")
    assert tool_version(BIN, "ansible-lint") == "26.10.1"
    assert result.returncode == 0 and violations == [], result.stdout[-6000:] + result.stderr[-4000:]
    assert "Profile 'production' was required, and it passed" in result.stdout + result.stderr
    assert (root / ".ansible" / "collections" / "ansible_collections" / "deadline_cloud" / "cmf" / "MANIFEST.json").exists()


def test_ansible_lint_at_the_certification_pin(tmp_path):
    """ansible-lint 24.12.2 on ansible-core 2.16 (the certification's pins), plain, with ansible.windows
    installed in the user's collections: it refuses the missing repository address alone."""
    bin_dir = tools_bin("certification")
    assert tool_version(bin_dir, "ansible-lint") == "24.12.2"
    home = home_with_ansible_windows(tmp_path)
    if not HAS_REPOSITORY:
        result, violations = ansible_lint(bin_dir, checkout(tmp_path / "as-is"), home)
        assert result.returncode != 0, result.stdout[-6000:]
        assert violations == ["galaxy.yml:1: schema[galaxy]: $ 'repository' is a required property. "
                              "See https://docs.ansible.com/ansible/latest/dev_guide/collections_galaxy_meta.html"], violations
    root = checkout(tmp_path / "placeholder", placeholder=not HAS_REPOSITORY)
    result, violations = ansible_lint(bin_dir, root, home)
    assert result.returncode == 0 and violations == [], result.stdout[-6000:] + result.stderr[-4000:]
    assert "Profile 'production' was required, and it passed" in result.stdout + result.stderr
    assert (root / ".ansible" / "collections" / "ansible_collections" / "deadline_cloud" / "cmf" / "MANIFEST.json").exists()


def _galaxy_import(tmp_path: Path, source: Path, bin_dir: Path) -> str:
    clean = simworker.ansible_env()
    clean.pop("ANSIBLE_COLLECTIONS_PATH")
    build = run([str(bin_dir / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), str(source)], env=clean)
    assert build.returncode == 0, build.stderr
    (tarball,) = tmp_path.glob("deadline_cloud-cmf-*.tar.gz")
    config = tmp_path / "galaxy-importer.cfg"
    # the certification's settings, with its ansible-lint run as well; its temporary files go to
    # ANSIBLE_LOCAL_TMP (default ~/.ansible/tmp): the test's own
    config.write_text(
        "[galaxy-importer]\nRUN_ANSIBLE_TEST = False\nRUN_ANSIBLE_LINT = True\nCHECK_REQUIRED_TAGS = True\n"
        f"ANSIBLE_LOCAL_TMP = {tmp_path / 'ansible-tmp'}\n"
    )
    clean.update(GALAXY_IMPORTER_CONFIG=str(config), PATH=f"{bin_dir}{os.pathsep}{clean.get('PATH', '')}")
    # it leaves importer_result.json in its working folder: not in the source tree
    result = run([str(bin_dir / "python"), "-m", "galaxy_importer.main", str(tarball)], cwd=tmp_path, env=clean)
    return f"exit {result.returncode}\n" + result.stdout + result.stderr


@pytest.mark.parametrize(("tools", "version"), [("venv", "0.4.44"), ("certification", "0.4.31")])
def test_galaxy_importer_accepts_the_built_tarball(tmp_path, tools, version):
    """What Galaxy and Automation Hub check on import (metadata, docs, plugin layout, tags, ansible-lint), offline."""
    bin_dir = tools_bin(tools)
    assert tool_version(bin_dir, "galaxy-importer") == version
    source = REPO
    if not HAS_REPOSITORY:
        (tmp_path / "as-is").mkdir()
        output = _galaxy_import(tmp_path / "as-is", REPO, bin_dir)
        assert output.startswith("exit 1") and "'repository' is required" in output, output[-6000:]
        source = simworker.copy_collection(tmp_path / "copy")
        (source / "galaxy.yml").write_text(f"{GALAXY.rstrip()}\nrepository: {PLACEHOLDER_REPOSITORY}\n", encoding="utf-8")
        (tmp_path / "placeholder").mkdir()
        tmp_path = tmp_path / "placeholder"
    output = _galaxy_import(tmp_path, source, bin_dir)
    assert output.startswith("exit 0"), output[-6000:]
    assert f"Importing with galaxy-importer {version}" in output and "Importer processing completed successfully" in output
    problems = [line for line in output.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert problems == [], output[-6000:]
    assert (tmp_path / "ansible-tmp").is_dir()  # its ansible-lint ran with the test's temporary folder


def test_antsibull_docs_lints_the_plugin_docs(tmp_path):
    """Every plugin's and the role's documentation as docs.ansible.com renders it, its references to
    ansible.builtin and ansible.windows resolved. antsibull-docs copies each dependency from where
    `ansible-galaxy collection list` finds it first, through git when that folder is inside a work
    tree (then only the files git lists: none of a .venv that .gitignore hides). So the collection and
    ansible.windows sit in one collections tree of the test's own, the only one searched
    (ANSIBLE_COLLECTIONS_PATH, no sys.path scan), with git kept from looking above it."""
    root = simworker.copy_collection(tmp_path)
    shutil.copytree(_ansible_windows_source(), tmp_path / "ansible_collections" / "ansible" / "windows")
    env = plain_env(tmp_path / "home", BIN)
    for key in [key for key in env if key.startswith("GIT_")]:
        del env[key]
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(tmp_path),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
        GIT_CEILING_DIRECTORIES=str(tmp_path),
    )
    listed = run([str(BIN / "ansible-galaxy"), "collection", "list", "--format", "json"], cwd=root, env=env)
    found = {name: path for path, collections in json.loads(listed.stdout).items() for name in collections}
    assert found["ansible.windows"] == found["deadline_cloud.cmf"] == str(tmp_path / "ansible_collections"), listed.stdout + listed.stderr
    command = [
        str(BIN / "antsibull-docs"), "lint-collection-docs", "--plugin-docs",
        "--validate-collection-refs", "dependent", "--disallow-unknown-collection-refs", str(root),
    ]
    result = run(command, cwd=root, env=env)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-4000:]
    assert result.stdout.strip() == "", result.stdout
