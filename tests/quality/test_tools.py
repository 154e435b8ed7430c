# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection as Ansible's own tools see it: ruff, ansible-doc, ansible-test sanity and units,
and a built tarball that ships what it should and installs and runs from where it was installed.
ansible-lint, galaxy-importer and antsibull-docs: tests/quality/test_certification.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import simworker

REPO = simworker.REPO_ROOT
BIN = Path(sys.executable).parent
MODULES = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if p.stem != "__init__")

# pslint needs pwsh (PowerShell), which these Linux machines cannot install: it runs as a test of its
# own, skipped with this reason where pwsh is absent. Every .ps1 is parsed with tree-sitter and held
# to its parameter contract in tests/quality/test_powershell.py in any case.
PSLINT_NEEDS = "pwsh (PowerShell) is not installed here, so ansible-test's pslint cannot run"


def run(command: list[str], cwd: Path = REPO, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env=env or simworker.ansible_env(), capture_output=True, text=True, timeout=timeout, check=False)


def test_ruff():
    result = run([str(BIN / "ruff"), "check", "--output-format", "concise", "."])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders(module):
    result = run([str(BIN / "ansible-doc"), "-t", "module", f"deadline_cloud.cmf.{module}"])
    assert result.returncode == 0, result.stderr
    assert f"deadline_cloud.cmf.{module}" in result.stdout
    assert "EXAMPLES" in result.stdout and "RETURN VALUES" in result.stdout


def test_ansible_doc_renders_the_connection():
    result = run([str(BIN / "ansible-doc"), "-t", "connection", "deadline_cloud.cmf.simulated_worker"])
    assert result.returncode == 0, result.stderr
    assert "simulated_worker_state" in result.stdout


def ansible_test_home() -> Path:
    """The HOME ansible-test runs with: its sanity venvs and pip bootstrap cache (~/.ansible/test)
    stay inside the checkout's ignored .cache/, kept between runs, instead of the user's home."""
    home = REPO / ".cache" / "ansible-test-home"
    home.mkdir(parents=True, exist_ok=True)
    return home


def _ensure_pip_bootstrap_offline(bin_dir: Path = BIN) -> None:
    """ansible-test downloads get-pip.py for each sanity venv; where that cannot happen, a stand-in
    that bootstraps pip from ensurepip takes its place. A cache that has the real script is untouched."""
    found = subprocess.run(
        [str(bin_dir / "python"), "-c", "import ansible_test, sys; sys.stdout.write(ansible_test.__file__)"],
        capture_output=True, text=True, check=True,
    ).stdout
    requirements = Path(found).parent / "_internal" / "python_requirements.py"
    match = re.search(r"pip='([\d.]+)'", requirements.read_text())
    assert match, "ansible-test no longer names its pip version where this test looks"
    version = match.group(1)
    cache = ansible_test_home() / ".ansible" / "test" / "cache" / f"get_pip_{version.replace('.', '_')}.py"
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "tests" / "tools" / "get_pip_standin.py", cache)


def ansible_test(
    tmp_path: Path, command: str, *args: str, bin_dir: Path = BIN, python: str | None = None, root: Path | None = None
) -> subprocess.CompletedProcess:
    """``ansible-test <command>`` of the venv in ``bin_dir`` on a copy of the collection laid out as
    ansible_collections/deadline_cloud/cmf (or in ``root``, such a folder), with its requirements and
    its HOME in ansible_test_home()."""
    _ensure_pip_bootstrap_offline(bin_dir)
    root = root or simworker.copy_collection(tmp_path)
    python = python or f"{sys.version_info.major}.{sys.version_info.minor}"
    env = simworker.ansible_env(HOME=str(ansible_test_home()))
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)
    full = [str(bin_dir / "ansible-test"), command, "--requirements", "--python", python, "--color", "no", *args]
    return run(full, cwd=root, env=env, timeout=1800)


def _sanity(tmp_path: Path, *args: str, bin_dir: Path = BIN, python: str | None = None) -> tuple[subprocess.CompletedProcess, list[str]]:
    result = ansible_test(tmp_path, "sanity", *args, bin_dir=bin_dir, python=python)
    ran = re.findall(r'Running sanity test "([\w-]+)"', result.stdout + result.stderr)
    return result, ran


def sanity_ran_every_test(result: subprocess.CompletedProcess) -> None:
    """ansible-test sanity passed, and none of its tests was skipped for want of a program (it only warns)."""
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    ran = re.findall(r'Running sanity test "([\w-]+)"', output)
    assert len(ran) >= 20 and {"validate-modules", "pylint", "pep8", "shellcheck", "yamllint"} <= set(ran), ran
    missing = re.findall(r'Required program "([^"]+)" not found', output)
    assert not missing, f"sanity tests skipped for want of {missing} (requirements-test.txt brings shellcheck)"


def test_ansible_test_sanity(tmp_path):
    sanity_ran_every_test(ansible_test(tmp_path, "sanity", "--skip-test", "pslint"))


def test_ansible_test_sanity_pslint(tmp_path):
    if shutil.which("pwsh") is None:
        pytest.skip(f"ansible-test sanity --test pslint: {PSLINT_NEEDS}; the .ps1 files are parsed by tree-sitter instead")
    result, ran = _sanity(tmp_path, "--test", "pslint")
    assert result.returncode == 0 and ran == ["pslint"], (result.stdout + result.stderr)[-8000:]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The collection built from this checkout and installed from its tarball: the collections folder."""
    folder = tmp_path_factory.mktemp("installed")
    clean = simworker.ansible_env()
    clean.pop("ANSIBLE_COLLECTIONS_PATH")  # the source tree must not stand in for the installed copy
    build = run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(folder), str(REPO)], env=clean)
    assert build.returncode == 0, build.stderr
    (tarball,) = folder.glob("deadline_cloud-cmf-*.tar.gz")
    install = run(
        [str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--no-deps", "--force", "-p", str(folder / "collections"), str(tarball)],
        env=clean,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return folder / "collections"


def test_built_collection_installs_and_runs_from_where_it_is_installed(tmp_path, installed):
    assert (installed / "ansible_collections" / "deadline_cloud" / "cmf" / "plugins" / "plugin_utils" / "_host" / "powershell" / "write_file.ps1").exists()
    assert not (installed / "ansible_collections" / "deadline_cloud" / "cmf" / ".venv").exists()

    state = simworker.save_state(tmp_path / "worker-01.yml", simworker.example_state())
    inventory = simworker.write_inventory(tmp_path, {"worker-01": state})
    playbook = simworker.write_playbook(
        tmp_path,
        [{"name": "Opt in", "deadline_cloud.cmf.worker_toml": {"table": "os", "key": "run_jobs_as_agent_user", "value": True}}],
    )
    env = simworker.ansible_env(ANSIBLE_COLLECTIONS_PATH=str(installed))
    result = simworker.run_playbook(playbook, inventory, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert b"\nrun_jobs_as_agent_user = true\n" in simworker.file_bytes(simworker.load_state(state))
    assert os.fspath(installed) in run([str(BIN / "ansible-doc"), "-t", "module", "deadline_cloud.cmf.worker_toml"], env=env).stdout


# What the tarball holds at its top, and under tests/: what an installed collection uses (ansible-test
# runs its unit tests and Windows integration targets from where it is installed), nothing the
# repository needs for its own development (galaxy.yml's build_ignore says which is which).
SHIPPED_TOP = {
    ".ansible-lint", ".yamllint", "CHANGELOG.md", "COPYING", "FILES.json", "MANIFEST.json", "README.md", "bindep.txt",
    "changelogs", "docs", "extensions", "meta", "playbooks", "plugins", "requirements.txt",
    "requirements-kerberos.txt", "requirements-simulated-worker.txt", "roles", "tests",
}
SHIPPED_TESTS = ("tests/unit/", "tests/integration/targets/", "tests/integration/inventory.winrm.template", "tests/conftest.py",
                 "tests/simworker.py", "tests/agent_truth.py")
# Left in a checkout by the tools and by hand: never shipped (the first is a real test worker's inventory).
LOCAL_LEFTOVERS = ("tests/integration/inventory.winrm", ".ansible/collections/ansible_collections/deadline_cloud/cmf/galaxy.yml",
                   ".venv-2.16/bin/python", ".venv-certification/pyvenv.cfg", ".cache/ansible-test-home/x", "tests/output/junit.xml")


def _members(tarball: Path) -> set[str]:
    with tarfile.open(tarball) as archive:
        return {member.name for member in archive.getmembers() if member.isfile()}


def test_the_tarball_ships_what_an_installed_collection_uses_and_no_development_file(tmp_path):
    source = simworker.copy_collection(tmp_path / "checkout")
    for leftover in LOCAL_LEFTOVERS:
        (source / leftover).parent.mkdir(parents=True, exist_ok=True)
        (source / leftover).write_text("ansible_password: not-for-the-tarball\n")
    clean = simworker.ansible_env()
    clean.pop("ANSIBLE_COLLECTIONS_PATH")
    build = run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), str(source)], env=clean)
    assert build.returncode == 0, build.stderr
    (tarball,) = tmp_path.glob("deadline_cloud-cmf-*.tar.gz")
    shipped = _members(tarball)

    assert {name.split("/")[0] for name in shipped} == SHIPPED_TOP
    assert sorted(name for name in shipped if name.startswith("tests/") and not name.startswith(SHIPPED_TESTS)) == []
    assert not shipped & set(LOCAL_LEFTOVERS)
    tracked = set(simworker.tracked_files())
    # everything the collection runs or documents is there, tests ansible-test runs included
    needed = {name for name in tracked if name.startswith(("plugins/", "roles/", "playbooks/", "meta/", "docs/", "changelogs/", *SHIPPED_TESTS))}
    needed.discard("changelogs/.plugin-cache.yaml")  # antsibull-changelog's cache of the plugin list
    assert sorted(needed - shipped) == []
    # and every development file of the repository is not
    development = {name for name in tracked if name.startswith((".github/", ".ci/", "scripts/", "benchmarks/", "awx/", "tests/quality/", "tests/windows/"))}
    development_files = r"requirements-(?!kerberos|simulated-worker).+\.txt|ruff\.toml|pytest\.ini|\.gitignore|\.gitattributes|tests/run\.sh"
    development |= {name for name in tracked if re.fullmatch(development_files, name)}
    assert development and sorted(development & shipped) == []


def test_ansible_test_units_where_the_collection_is_installed(tmp_path, installed):
    """The unit tests as ansible-test runs them (its own pytest configuration, in a fresh venv with
    tests/unit/requirements.txt), from the collection installed from its tarball: what it ships for
    them is enough. tests/quality/test_cores.py runs them on a copy of the checkout at each end."""
    result = ansible_test(tmp_path, "units", "--venv", root=installed / "ansible_collections" / "deadline_cloud" / "cmf")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    passed = re.search(r"(\d+) passed", output)
    assert passed and int(passed.group(1)) >= 250, output[-4000:]
