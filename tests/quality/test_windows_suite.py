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
# The suite and the CI scripts of the Ansible leg (scripts/ holds the operations' scripts as exported,
# which tests/quality/test_powershell.py checks as they are sent).
SUITE_FILES = sorted([*SUITE.glob("*.ps1"), *SUITE.glob("*.psm1"), *(SUITE / "ci").glob("*.ps1")])


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


def test_the_harness_serializes_results_at_the_controllers_depth():
    # win_powershell turns what lies deeper than `depth` into strings: the suite must see a result as
    # the controller does, or it passes a shape the controller never gets.
    from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.powershell_host import _RESULT_DEPTH

    harness = (SUITE / "CmfContract.psm1").read_text(encoding="utf-8")
    body = harness[harness.index("function Invoke-CmfOperation {") :]
    body = body[: body.index("\n}\n")]
    assert re.findall(r"\$ansible\.Result \| ConvertTo-Json -Depth (\d+)", body) == [str(_RESULT_DEPTH)]


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


def test_the_workflow_has_the_three_legs():
    assert set(_workflow()["jobs"]) == {"pester", "psscriptanalyzer", "ansible"}


def _ansible_steps() -> list[dict]:
    return _workflow()["jobs"]["ansible"]["steps"]


def _index(steps: list[dict], needle: str) -> int:
    found = [n for n, step in enumerate(steps) if needle in (step.get("run", "") + str(step.get("uses", "")))]
    assert found, f"no step runs {needle}"
    return found[0]


def test_the_ansible_leg_runs_on_both_windows_images():
    job = _workflow()["jobs"]["ansible"]
    assert sorted(job["strategy"]["matrix"]["os"]) == ["windows-2022", "windows-2025"]
    assert job["runs-on"] == "${{ matrix.os }}" and job["strategy"]["fail-fast"] is False
    assert job["steps"][0]["uses"].startswith("actions/checkout@")


def test_the_ansible_leg_has_a_controller_in_wsl_1_on_the_runner():
    steps = _ansible_steps()
    wsl = steps[_index(steps, "Vampire/setup-wsl@")]
    assert str(wsl["with"]["wsl-version"]) == "1", "WSL 1 shares the runner's network: 127.0.0.1 is the runner's WinRM"
    assert "python3-venv" in wsl["with"]["additional-packages"]
    controller = [step for step in steps if step.get("shell") == "wsl-bash {0}"]
    assert controller and all(_index(steps, "Vampire/setup-wsl@") < steps.index(step) for step in controller)
    assert any("ansible-galaxy collection install ansible.windows" in step["run"] for step in controller)
    assert any("-r \"$workspace/requirements.txt\"" in step["run"] for step in controller)  # pywinrm


def test_the_ansible_leg_enables_winrm_builds_a_worker_then_runs_targets_selftest_and_converge():
    steps = _ansible_steps()
    order = [
        _index(steps, "Enable-CmfWinRM.ps1"),
        _index(steps, "New-CmfStandInWorker.ps1"),
        _index(steps, "ansible-test windows-integration"),
        _index(steps, "playbooks/selftest.yml"),
        _index(steps, "playbooks/converge.yml"),
        _index(steps, "Test-CmfConverged.ps1"),
    ]
    assert order == sorted(order), "WinRM, the worker, the targets, the self-test, the converge, its check"
    last = steps[-1]["run"]
    assert "playbooks/converge.yml" in last and "changed=0" in last, "a second converge must change nothing"
    inventory = (SUITE / "ci" / "Enable-CmfWinRM.ps1").read_text(encoding="utf-8")
    assert "ansible_winrm_transport = 'ntlm'" in inventory and "'127.0.0.1'" in inventory
    assert "deadline_workers:" in inventory and "inventory.winrm" in inventory


def _ini_line(script: str, alias: str, connection: dict) -> str:
    """The INI host line Enable-CmfWinRM.ps1 writes, built here with the script's own format for one value."""
    body = re.search(r"\(\(\$connection\.Keys \| Sort-Object \| ForEach-Object \{ \"(.*?)\" \}\) -join ' '\)", script).group(1)
    assert body.startswith("$_=") and "$($connection[$_])" in body, body
    return f"{alias} " + " ".join(body.replace("$($connection[$_])", "\0").replace("$_", key).replace("\0", str(connection[key])) for key in sorted(connection))


def _yaml_line_format(script: str) -> str:
    body = re.search(r"ForEach-Object \{ \"          \$\(\$_\): (.*?)\" \}", script).group(1)
    assert "$($connection[$_])" in body, body
    return body


# As Enable-CmfWinRM.ps1 fills $connection on a runner: the account as HOST\user, a password of its alphabet.
_CONNECTION = {
    "ansible_host": "127.0.0.1", "ansible_port": "5985", "ansible_connection": "winrm", "ansible_winrm_transport": "ntlm",
    "ansible_winrm_message_encryption": "always", "ansible_user": "RUNNERVM\\cmf-ansible", "ansible_password": "Cmf-9xAbc0aZb9c",
}


def _inventory_host(tmp_path, text: str, name: str) -> dict:
    import subprocess

    import simworker

    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    run = subprocess.run([str(simworker.ansible_bin() / "ansible-inventory"), "-i", str(path), "--host", "windows-runner"],
                         capture_output=True, text=True, env=simworker.ansible_env(), check=False, timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_the_runners_inventories_keep_the_account_as_written(tmp_path):
    # Ansible splits an INI host line as a POSIX shell does: RUNNERVM\cmf-ansible unquoted became RUNNERVMcmf-ansible.
    script = (SUITE / "ci" / "Enable-CmfWinRM.ps1").read_text(encoding="utf-8")
    ini = "[windows]\n" + _ini_line(script, "windows-runner", _CONNECTION) + "\n"
    host = _inventory_host(tmp_path, ini, "inventory.winrm")
    assert host["ansible_user"] == "RUNNERVM\\cmf-ansible"
    assert host["ansible_password"] == _CONNECTION["ansible_password"] and host["ansible_port"] == 5985
    value = _yaml_line_format(script)
    lines = ["all:", "  children:", "    deadline_workers:", "      hosts:", "        windows-runner:"]
    lines += [f"          {k}: " + value.replace("$($connection[$_])", v) for k, v in sorted(_CONNECTION.items())]
    assert _inventory_host(tmp_path, "\n".join(lines) + "\n", "inventory.yml")["ansible_user"] == "RUNNERVM\\cmf-ansible"


def test_an_unquoted_ini_value_would_lose_the_backslash(tmp_path):
    line = _ini_line('(($connection.Keys | Sort-Object | ForEach-Object { "$_=$($connection[$_])" }) -join \' \')', "windows-runner", _CONNECTION)
    assert _inventory_host(tmp_path, "[windows]\n" + line + "\n", "inventory.winrm")["ansible_user"] == "RUNNERVMcmf-ansible"


def test_the_stand_in_worker_keeps_the_installers_service_and_runs_the_stand_in_in_it():
    # --no-install-service grants no Log on as a service (nor does sc.exe config obj=): the service could not log on (1069).
    script = (SUITE / "ci" / "New-CmfStandInWorker.ps1").read_text(encoding="utf-8")
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))
    assert "--no-install-service" not in code and "obj=" not in code and "New-Service" not in code
    installer = code.index("Invoke-Checked $installer @(")
    image = code.index("Invoke-Checked 'sc.exe' @('config', 'DeadlineWorker', 'binPath=', $program)")
    assert installer < image < code.index("Start-Service -Name DeadlineWorker")


def test_the_converge_check_reads_rights_through_the_lsa_by_sid():
    # secedit's export may name a local account by its name, not *SID: the check read "not held" for a held right.
    script = (SUITE / "ci" / "Test-CmfConverged.ps1").read_text(encoding="utf-8")
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))
    assert "secedit" not in code
    assert "Import-Module (Join-Path (Split-Path -Parent $PSScriptRoot) 'CmfContract.psm1')" in code
    assert "$held = @([CmfContractLsa]::Get($sid))" in code and "$held -notcontains $right" in code
    harness = (SUITE / "CmfContract.psm1").read_text(encoding="utf-8")
    assert "public static string[] Get(string sid)" in harness and "LsaEnumerateAccountRights(policy, Sid(sid)" in harness


_REPO_PATH = re.compile(r"(?<![\w/.$-])((?:tests|playbooks|plugins|roles|benchmarks|docs|extensions)/[A-Za-z0-9_./-]*[A-Za-z0-9_])")
_WORKSPACE_PATH = re.compile(r"\$workspace/([A-Za-z0-9_./-]*[A-Za-z0-9_])")


def _named_paths(document: dict) -> set[str]:
    texts = []
    for job in document["jobs"].values():
        for step in job["steps"]:
            texts.append(step.get("run", ""))
            texts.extend(str(value) for value in (step.get("with") or {}).values())
    found = set()
    for text in texts:
        found.update(_REPO_PATH.findall(text))
        found.update(_WORKSPACE_PATH.findall(text))
    return found


def test_every_path_the_workflow_names_exists():
    named = _named_paths(_workflow())
    assert {"tests/windows", "playbooks/selftest.yml", "playbooks/converge.yml", "tests/windows/ci/New-CmfStandInWorker.ps1"} <= named
    missing = sorted(path for path in named if not (REPO_ROOT / path).exists())
    assert missing == []


def test_a_path_that_does_not_exist_would_be_caught():
    document = _workflow()
    document["jobs"]["ansible"]["steps"].append({"run": "tests/windows/ci/No-SuchScript.ps1"})
    assert "tests/windows/ci/No-SuchScript.ps1" in _named_paths(document)
    assert not (REPO_ROOT / "tests/windows/ci/No-SuchScript.ps1").exists()


_CLAIM = re.compile(
    r"\b(?:pass(?:es|ed)|ran|runs green|succeed(?:s|ed)|verified|tested|proven)\b[^.\n]{0,40}\bon (?:real )?Windows\b(?! by this)",
    re.IGNORECASE,
)


@pytest.mark.parametrize("path", [WORKFLOW, SUITE / "README.md", REPO_ROOT / "README.md"], ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_nothing_claims_a_windows_run_that_did_not_happen(path):
    text = path.read_text(encoding="utf-8")
    assert _CLAIM.findall(text) == []
    if path == WORKFLOW:
        assert "Not seen to run" in text


def test_a_claim_of_a_windows_run_would_be_caught():
    assert _CLAIM.search("The contract suite passed on Windows Server 2022.")
    assert _CLAIM.search("verified on real Windows")
    assert not _CLAIM.search("have not been run on Windows by this test suite")
