# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Windows contract suite (tests/windows), checked here without Windows: its PowerShell parses,
and the workflow that runs it on Windows has the shape it needs. It never runs here."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SUITE = REPO_ROOT / "tests" / "windows"
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "windows.yml"
SUITE_FILES = sorted([*SUITE.glob("*.ps1"), *SUITE.glob("*.psm1")])


def _errors_in():
    # The parse helper of test_powershell.py (tree-sitter), loaded by path: test modules are not a package.
    spec = importlib.util.spec_from_file_location("cmf_test_powershell", Path(__file__).with_name("test_powershell.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.errors_in


errors_in = _errors_in()


def test_the_suite_has_its_files():
    names = {path.name for path in SUITE_FILES}
    assert {"Contract.Tests.ps1", "CmfContract.psm1"} <= names
    assert (SUITE / "README.md").is_file() and (SUITE / "vectors.json").is_file()


@pytest.mark.parametrize("path", SUITE_FILES, ids=lambda p: p.name)
def test_every_suite_file_parses(path):
    assert errors_in(path.read_bytes()) == []


def test_a_syntax_error_in_the_suite_would_be_caught():
    broken = (SUITE / "Contract.Tests.ps1").read_bytes().replace(b"finally {", b"finally {{", 1)
    assert errors_in(broken) != []


def test_the_harness_exports_what_the_tests_call():
    tests = (SUITE / "Contract.Tests.ps1").read_text(encoding="utf-8")
    harness = (SUITE / "CmfContract.psm1").read_text(encoding="utf-8")
    exported = set(re.findall(r"[A-Z][a-z]+-Cmf[A-Za-z]+", harness[harness.index("$exported = @("):]))
    called = set(re.findall(r"\b([A-Z][a-z]+-Cmf[A-Za-z]+)\b", tests))
    defined = set(re.findall(r"^function ([A-Za-z]+-Cmf[A-Za-z]+)", harness, re.MULTILINE))
    assert called <= exported <= defined, (called - exported, exported - defined)


def test_the_harness_runs_the_exported_scripts_and_names_parameters_as_the_controller_does():
    harness = (SUITE / "CmfContract.psm1").read_text(encoding="utf-8")
    # No include logic of its own: it reads scripts/<operation>.ps1, exported from script_text (the
    # staleness test in tests/contract/test_vectors.py holds the export to what the controller sends).
    assert "#cmf:include" not in harness and "lib\\" not in harness
    assert "Scripts = Join-Path $PSScriptRoot 'scripts'" in harness
    assert "Join-Path $Session.Scripts \"$Operation.ps1\"" in harness
    assert "Split('_')" in harness and "ToUpperInvariant()" in harness  # expected_sha256 -> ExpectedSha256


def test_the_harness_returns_a_property_whole():
    # `return , $value`: without the comma PowerShell unrolls an empty list to $null and a one-item list to its item.
    harness = (SUITE / "CmfContract.psm1").read_text(encoding="utf-8")
    body = harness[harness.index("function Get-CmfProperty {") :]
    body = body[: body.index("\n}\n")]
    returns = re.findall(r"return ([^\n}]*[^\n} ])", body)
    assert returns == ["$null", ", $Object[$Name]", ", $property.Value", "$null"]


def test_the_harness_and_python_check_types_alike():
    """The harness's self-test of $type holds the same table as test_vectors.py's."""
    from contract_vectors import TYPE_MATCHER_CASES, TYPE_MATCHER_DOCUMENT

    tests = (SUITE / "Contract.Tests.ps1").read_text(encoding="utf-8")
    harness_cases = [(key, kind, count == "0") for key, kind, count in re.findall(r"@\('(\w+)', '(\w+)', ([01])\)", tests)]
    assert harness_cases == TYPE_MATCHER_CASES
    document = re.search(r"\$document = '(\{\"list\".*?)' \| ConvertFrom-Json", tests).group(1)
    assert json.loads(document) == TYPE_MATCHER_DOCUMENT


def _workflow() -> dict:
    document = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    # PyYAML reads the bare key `on` as True (YAML 1.1).
    document["on"] = document.pop(True, document.get("on"))
    return document


def test_the_workflow_runs_on_push_and_pull_requests():
    assert {"push", "pull_request"} <= set(_workflow()["on"])


@pytest.mark.parametrize("job", ["pester", "psscriptanalyzer"])
def test_each_job_runs_on_both_windows_images_in_both_shells(job):
    definition = _workflow()["jobs"][job]
    matrix = definition["strategy"]["matrix"]
    assert sorted(matrix["os"]) == ["windows-2022", "windows-2025"]
    assert sorted(matrix["shell"]) == ["powershell", "pwsh"]
    assert definition["runs-on"] == "${{ matrix.os }}"
    assert definition["defaults"]["run"]["shell"] == "${{ matrix.shell }}"
    assert definition["strategy"]["fail-fast"] is False
    assert definition["steps"][0]["uses"].startswith("actions/checkout@")


def test_the_pester_job_installs_pester_5_and_runs_the_suite():
    steps = _workflow()["jobs"]["pester"]["steps"]
    runs = [step.get("run", "") for step in steps]
    install = next(i for i, run in enumerate(runs) if "Install-Module -Name Pester" in run)
    invoke = next(i for i, run in enumerate(runs) if "Invoke-Pester" in run)
    assert install < invoke
    assert re.search(r"-MinimumVersion 5\.", runs[install])
    assert "'tests/windows'" in runs[invoke] and "Run.Exit = $true" in runs[invoke]  # a failed test fails the job


def test_the_analyzer_job_checks_the_scripts_and_the_suite_and_fails_on_errors():
    runs = "\n".join(step.get("run", "") for step in _workflow()["jobs"]["psscriptanalyzer"]["steps"])
    assert "Invoke-ScriptAnalyzer -Path plugins/plugin_utils/_host/powershell" in runs
    assert "Invoke-ScriptAnalyzer -Path tests/windows" in runs
    assert "throw" in runs
