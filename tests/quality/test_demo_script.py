# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""scripts/demo.sh, the newcomer's first command, read rather than run (it installs a venv): it
installs only what the playbooks need and keeps its work inside the checkout."""

from __future__ import annotations

import re
import shlex

import simworker

REPO = simworker.REPO_ROOT
DEMO = (REPO / "scripts" / "demo.sh").read_text(encoding="utf-8")
# The test toolchain: none of it belongs in the demo's venv.
TEST_TOOLS = ("ansible-lint", "molecule", "pytest", "galaxy-importer", "ruff", "tree-sitter", "deadline-cloud-worker-agent", "ansible==")


def requirement_lines(name: str) -> list[str]:
    text = (REPO / name).read_text(encoding="utf-8")
    return [line.split("#")[0].strip() for line in text.splitlines() if line.split("#")[0].strip()]


def test_the_demo_installs_only_requirements_demo():
    installs = [shlex.split(line) for line in DEMO.splitlines() if re.search(r"\bpip install\b", line)]
    assert installs, "scripts/demo.sh no longer installs with pip where this test looks"
    for words in installs:
        arguments = words[words.index("install") + 1 :]
        named, packages = [], []
        while arguments:
            word = arguments.pop(0)
            if word in ("-r", "--requirement"):
                named.append(arguments.pop(0))
            elif word in ("--progress-bar", "-c", "--constraint"):
                arguments.pop(0)  # an option's value, not a package
            elif not word.startswith("-"):
                packages.append(word)
        assert named == ["requirements-demo.txt"] and packages == [], words
    assert "ensure-venv" not in DEMO  # the test toolchain's venv


def test_requirements_demo_is_the_runtime_requirements_ansible_core_and_the_simulated_worker():
    lines = requirement_lines("requirements-demo.txt")
    # the demo's workers are simulated
    assert sorted(line for line in lines if line.startswith("-r ")) == ["-r requirements-simulated-worker.txt", "-r requirements.txt"], lines
    others = [line for line in lines if not line.startswith("-r ")]
    assert len(others) == 1 and others[0].startswith("ansible-core=="), lines
    for line in requirement_lines("requirements.txt"):
        assert not line.startswith(TEST_TOOLS), line
    # the test venv holds the same ansible-core: the demo shows what the tests check
    assert "-r requirements-demo.txt" in requirement_lines("requirements-test.txt")


def test_the_demo_works_in_a_folder_of_the_checkout_that_git_and_the_tarball_ignore():
    (work,) = re.findall(r'^work="([^"]+)"$', DEMO, flags=re.MULTILINE)
    assert work.startswith("$PWD/"), work  # the script cds to the checkout first
    assert "mktemp" not in DEMO and "TMPDIR" not in DEMO and "/tmp" not in DEMO
    folder = work.removeprefix("$PWD/")
    assert 'rm -rf "$work"' in DEMO  # recreated at each run
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert f"{folder}/" in ignored
    build_ignore = (REPO / "galaxy.yml").read_text(encoding="utf-8")
    assert re.search(rf"^\s*- {re.escape(folder)}$", build_ignore, flags=re.MULTILINE)
