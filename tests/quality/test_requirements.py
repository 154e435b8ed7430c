# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the collection asks a controller or an execution environment to install, and nothing more:
the plugins' own packages in requirements.txt, the simulated worker's ruamel.yaml only where it
runs, Kerberos as one opt-in on both sides (pywinrm's extra and bindep's system packages)."""

from __future__ import annotations

import re
import subprocess
import sys

import simworker
import yaml

ROOT = simworker.REPO_ROOT


def requirement_names(name: str) -> dict[str, str]:
    """Package name (lower case, without extras) to its line, following -r includes."""
    found: dict[str, str] = {}
    for raw in (ROOT / name).read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            found.update(requirement_names(line[3:].strip()))
            continue
        found[re.split(r"[\[<>=!~ ;]", line, maxsplit=1)[0].lower()] = line
    return found


def bindep_entries() -> list[tuple[str, set[str]]]:
    entries = []
    for raw in (ROOT / "bindep.txt").read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            package, _space, selectors = line.partition(" ")
            entries.append((package, set(selectors.strip("[] ").split())))
    return entries


def test_the_collection_requires_only_what_its_plugins_import():
    production = requirement_names("requirements.txt")
    assert set(production) == {"tomlkit", "tomli", "pyyaml", "pywinrm"}, production
    assert production["tomli"].endswith('; python_version < "3.11"'), "tomli stands in for tomllib on Python 3.10 only"
    assert "[" not in production["pywinrm"], "an extra in requirements.txt needs system packages bindep.txt does not install"


def test_ruamel_yaml_is_installed_only_where_the_simulated_worker_runs():
    assert "ruamel.yaml" not in requirement_names("requirements.txt")
    for name in ("requirements-demo.txt", "requirements-test.txt", "requirements-playbook-tests.txt", "tests/unit/requirements.txt"):
        assert "ruamel.yaml" in requirement_names(name), name


def test_kerberos_is_one_opt_in_on_both_sides():
    entries = bindep_entries()
    assert entries, "bindep.txt lists the Kerberos packages"
    # none is installed by default (ansible-builder selects no "kerberos" profile)...
    assert all("kerberos" in selectors for _package, selectors in entries), entries
    # ...and exactly the Python side that needs them asks for them
    kerberos = requirement_names("requirements-kerberos.txt")
    assert kerberos["pywinrm"].startswith("pywinrm[kerberos]")
    assert {"krb5-devel", "libkrb5-dev", "gcc"} <= {package for package, _selectors in entries}
    metadata = yaml.safe_load((ROOT / "meta" / "execution-environment.yml").read_text(encoding="utf-8"))
    assert metadata["dependencies"] == {"python": "requirements.txt", "system": "bindep.txt"}


def test_the_test_environment_pins_what_runs_the_playbooks_as_awx_does():
    pins = requirement_names("requirements-test.txt")
    assert pins["ansible-runner"] == "ansible-runner==2.4.3" and pins["ansible-builder"] == "ansible-builder==3.2.0"


def test_the_simulated_worker_without_ruamel_yaml_says_what_to_install(tmp_path):
    state = simworker.save_state(tmp_path / "worker-01.yml", simworker.example_state())
    script = (
        "import sys\n"
        "sys.modules['ruamel'] = None\n"  # as if it were not installed
        f"sys.path.insert(0, {str(simworker.collections_root())!r})\n"
        "from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.state import StateFile, StateFileError\n"
        "try:\n"
        f"    StateFile({str(state)!r}).load()\n"
        "except StateFileError as error:\n"
        "    print(error)\n"
    )
    said = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert said.startswith("the simulated worker needs the Python package ruamel.yaml on the controller"), said
    assert "pip install 'ruamel.yaml>=0.18'" in said and "real workers do not need it" in said


def test_the_ssm_example_uses_amazon_aws_with_its_windows_fixes_and_names_the_session_manager_plugin():
    inventory = (ROOT / "playbooks" / "inventory" / "aws_ec2.yml").read_text(encoding="utf-8")
    compose = yaml.safe_load(inventory)["compose"]
    assert compose["ansible_connection"] == "'amazon.aws.aws_ssm'"
    assert "amazon.aws 11.4.0 or later" in inventory and "session-manager-plugin" in compose["ansible_aws_ssm_plugin"]
    assert "community.aws.aws_ssm" not in (ROOT / "README.md").read_text(encoding="utf-8")
