# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PowerShell side, checked without PowerShell: every script parses (tree-sitter), declares
exactly the parameters the Python side passes, and follows the rules that broke real collections."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tree_sitter_powershell
from tree_sitter import Language, Node, Parser

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host import powershell_host
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.errors import HostOperationError
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.operations import OPERATIONS
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.powershell_host import (
    PowerShellHost,
    powershell_parameter_name,
    script_text,
)
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.state import _registry

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "plugins" / "plugin_utils" / "_host" / "powershell"
PARSER = Parser(Language(tree_sitter_powershell.language()))
# The same test win_powershell makes to decide whether a script may run in check mode.
SUPPORTS_SHOULD_PROCESS = re.compile(r"\[CmdletBinding\((?:[\w=\$]+,\s*)?SupportsShouldProcess(?:=\$true)?(?:,\s*[\w=\$]+)?\)\]")


def errors_in(source: bytes) -> list[str]:
    tree = PARSER.parse(source)
    found: list[str] = []

    def walk(node: Node) -> None:
        if node.is_error or node.is_missing:
            line, column = node.start_point
            found.append(f"line {line + 1}, column {column + 1}: {node.type} {source[node.start_byte:node.end_byte][:40]!r}")
        for child in node.children:
            walk(child)

    walk(tree.root_node)
    return found


def declared_parameters(source: bytes) -> list[str]:
    tree = PARSER.parse(source)
    blocks = [node for node in tree.root_node.children if node.type == "param_block"]
    assert len(blocks) == 1, "a script declares one top-level param() block"
    names = []
    for parameter in blocks[0].children:
        if parameter.type != "parameter_list":
            continue
        for script_parameter in parameter.children:
            if script_parameter.type == "script_parameter":
                variable = next(child for child in script_parameter.children if child.type == "variable")
                names.append(source[variable.start_byte + 1 : variable.end_byte].decode())
    return names


ALL_FILES = sorted(SCRIPTS.rglob("*.ps1"))


def test_there_are_scripts_to_check():
    assert len(ALL_FILES) >= 2


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: str(p.relative_to(SCRIPTS)))
def test_every_ps1_file_parses(path):
    assert errors_in(path.read_bytes()) == []


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_each_operation_has_a_script_that_parses_as_sent(operation):
    assert errors_in(script_text(operation).encode()) == []


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_script_parameters_are_exactly_what_python_passes(operation):
    declared = declared_parameters(script_text(operation).encode())
    expected = sorted(powershell_parameter_name(name) for name in OPERATIONS[operation].parameters)
    assert sorted(declared) == expected


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_read_only_scripts_run_in_check_mode_and_changing_ones_never_do(operation):
    text = script_text(operation)
    declares = bool(SUPPORTS_SHOULD_PROCESS.search(text))
    assert declares is not OPERATIONS[operation].changes_host


def code_of(text: str) -> str:
    """The script without its comments (they may name what the code avoids)."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_scripts_follow_the_windows_edge_rules(operation):
    text = code_of(script_text(operation))
    assert "$ErrorActionPreference = 'Stop'" in text
    assert re.search(r"\$Ansible\.Changed\s*=", text), "$Ansible.Changed defaults to true: set it"
    assert "$Ansible.Result" in text, "return data through $Ansible.Result, not the pipeline"
    for forbidden, why in {
        "Get-LocalGroupMember": "fails on orphaned SIDs",
        "secedit": "rewrites other accounts' rights",
        "Set-Content": "writes a BOM on PowerShell 5.1",
        "Out-File": "writes UTF-16 on PowerShell 5.1",
        "Move-Item": "carries the temporary file's ACL",
        "?.": "PowerShell 7 syntax",
        "??": "PowerShell 7 syntax",
    }.items():
        assert forbidden not in text, f"{operation}.ps1 uses {forbidden}: {why}"


def _refusal_tables_after_a_change(text: str) -> list[str]:
    """The hashtables holding an ``error_code`` that come after the script's first
    ``$Ansible.Changed = $true``: refusals that may follow a change."""
    first = text.find("$Ansible.Changed = $true")
    tables = []
    for match in re.finditer(r"error_code = ", text):
        if first < 0 or match.start() < first:
            continue
        start = text.rindex("@{", 0, match.start())
        depth, end = 0, start
        for end in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0 and text[end] == "}":
                break
        tables.append(text[start : end + 1])
    return tables


@pytest.mark.parametrize("operation", sorted(op for op, o in OPERATIONS.items() if o.changes_host))
def test_a_refusal_that_may_follow_a_change_says_whether_it_changed(operation):
    # The controller takes `changed` from a refusal's details (HostOperationError.changed): a refusal
    # sent after $Ansible.Changed became true must carry it, or a changed host is reported unchanged.
    own = code_of((SCRIPTS / f"{operation}.ps1").read_text(encoding="utf-8"))
    for table in _refusal_tables_after_a_change(own):
        assert "changed = [bool]$Ansible.Changed" in table, f"{operation}.ps1: {table}"
    # A refusal thrown by a helper (the reading after the change) and turned into the result.
    lines = [line.strip() for line in own.splitlines() if line.strip()]
    for n, line in enumerate(lines):
        if line == "$Ansible.Result = $refusal":
            assert lines[n - 1].startswith("$refusal.changed = [bool]$Ansible.Changed"), f"{operation}.ps1: {lines[n - 1]}"


REFUSAL_CODE = re.compile(r"New-CmfRefusal '([A-Z_]+)'|error_code = '([A-Z_]+)'|\bcode = '([A-Z_]+)'")


def _documented_codes(module: str) -> set[str]:
    text = (REPO_ROOT / "plugins" / "modules" / f"{module}.py").read_text(encoding="utf-8")
    returned = text[text.index("error_code:", text.index('RETURN = r"""')) :]
    return set(re.findall(r"V\(([A-Z_]+)\)", returned))


@pytest.mark.parametrize(
    ("module", "operation", "beyond", "not_refused"),
    [
        # beyond: HOST_ERROR (the controller's), LSA_ERROR (the C# marks its exceptions with it), ACCOUNT_AMBIGUOUS
        # (the simulated worker's). not_refused: a code of the reading's token_groups_error, which only
        # set_group_membership turns into a refusal (a removal while the domain groups are unknown).
        ("win_group_member", "set_group_membership", {"HOST_ERROR", "LSA_ERROR", "ACCOUNT_AMBIGUOUS"}, set()),
        ("win_user_rights", "set_user_rights", {"HOST_ERROR", "LSA_ERROR", "ACCOUNT_AMBIGUOUS"}, {"TOKEN_GROUPS_FAILED"}),
    ],
)
def test_a_module_documents_the_codes_its_operation_refuses_with_and_no_other(module, operation, beyond, not_refused):
    sent = code_of(script_text(operation))
    raised = {next(code for code in match if code) for match in REFUSAL_CODE.findall(sent)} - not_refused
    documented = _documented_codes(module)
    assert raised - documented == set(), f"{module} does not document {sorted(raised - documented)}"
    assert documented - raised - beyond == set(), f"{module} documents {sorted(documented - raised - beyond)}, which nothing raises"


def test_a_refusal_without_changed_after_a_change_would_be_caught():
    own = code_of((SCRIPTS / "write_file.ps1").read_text(encoding="utf-8"))
    tables = _refusal_tables_after_a_change(own.replace("; changed = [bool]$Ansible.Changed }", " }"))
    assert any("REPLACE_FAILED" in t and "changed =" not in t for t in tables)


def test_every_script_is_a_registered_operation_and_every_lib_is_included():
    scripts = {p.stem for p in SCRIPTS.glob("*.ps1")}
    assert scripts == set(OPERATIONS)
    sent = "\n".join(script_text(op) for op in OPERATIONS)
    for lib in (SCRIPTS / "lib").glob("*.ps1"):
        assert lib.read_text().strip().splitlines()[-1] in sent, f"lib/{lib.name} is included by no operation"


def test_the_simulated_worker_implements_every_operation():
    assert set(_registry()) == set(OPERATIONS)


class _RecordingAction:
    """Stands in for an action plugin: records what PowerShellHost sends to win_powershell."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def _execute_module(self, module_name: str, module_args: dict, task_vars: dict) -> dict:
        self.sent.append({"module": module_name, **module_args})
        return {"changed": False, "result": {"exists": False, "content": "", "sha256": ""}}


def test_powershell_host_binds_python_parameters_to_the_declared_names():
    action = _RecordingAction()
    host = PowerShellHost(action, {}, check_mode=False)
    host.write_file(r"C:\x\worker.toml", b"[os]\n", "ab" * 32, backup=True)
    (sent,) = action.sent
    assert sent["module"] == "ansible.windows.win_powershell"
    assert sorted(sent["parameters"]) == sorted(declared_parameters(script_text("write_file").encode()))
    assert sent["script"] == script_text("write_file")
    assert sent["depth"] >= 5


def test_a_changing_operation_is_never_sent_in_check_mode():
    action = _RecordingAction()
    host = PowerShellHost(action, {}, check_mode=True)
    with pytest.raises(RuntimeError, match="check mode"):
        host.write_file(r"C:\x\worker.toml", b"", "", backup=False)
    assert action.sent == []


def test_a_renamed_parameter_is_caught():
    source = script_text("read_file").replace("$Path", "$FilePath").encode()
    assert declared_parameters(source) != [powershell_parameter_name(p) for p in OPERATIONS["read_file"].parameters]


def test_a_syntax_error_is_caught():
    assert errors_in(b"param([string]$Path)\nif ($Path {\n")


# What each operation sends: only the helpers it uses, each once.

LIBS = sorted(p.stem for p in (SCRIPTS / "lib").glob("*.ps1"))


def functions_defined(text: str) -> list[str]:
    return re.findall(r"^\s*function\s+([\w-]+)", code_of(text), re.MULTILINE)


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_each_helper_is_sent_once_even_when_two_libs_include_it(operation):
    defined = functions_defined(script_text(operation))
    assert len(defined) == len(set(defined)), sorted(name for name in defined if defined.count(name) > 1)
    assert not re.search(r"^#cmf:include", script_text(operation), re.MULTILINE), "an include left unexpanded"


def test_an_include_line_ending_in_crlf_is_expanded(monkeypatch):
    # A checkout that turned the scripts to CRLF must not send an include unexpanded (it would run as a
    # comment, and the operation would fail at its first helper).
    files = {"op.ps1": "param()\r\n#cmf:include Helper\r\n$x = 1\r\n", "lib/Helper.ps1": "function Get-X { 1 }\r\n"}
    monkeypatch.setattr(powershell_host, "_resource", files.__getitem__)
    assert powershell_host.script_text("op") == "param()\r\nfunction Get-X { 1 }\r\n$x = 1\r\n"


@pytest.mark.parametrize("path", [*ALL_FILES, *sorted((REPO_ROOT / "tests" / "windows").rglob("*.ps*1"))], ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_powershell_files_are_lf_and_stay_so_on_windows_checkouts(path):
    assert b"\r" not in path.read_bytes()
    attributes = (REPO_ROOT / ".gitattributes").read_text(encoding="utf-8").splitlines()
    assert "*.ps1 text eol=lf" in attributes and "*.psm1 text eol=lf" in attributes


def test_a_lib_included_by_two_libs_is_sent_once():
    # AgentReading includes Refusal directly and again through AgentService and Accounts.
    text = script_text("read_agent_info")
    assert text.count("function New-CmfRefusal") == 1
    assert "function Get-AccountReport" in text and "function Get-AgentServiceInfo" in text


@pytest.mark.parametrize("operation", ["read_file", "write_file"])
def test_operations_without_native_calls_send_no_csharp(operation):
    text = script_text(operation)
    assert not re.search(r"(^|[;{(|])\s*Add-Type\s+-", code_of(text), re.MULTILINE)
    assert "DllImport" not in text
    assert "function Get-AccountReport" not in text


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_csharp_is_compiled_only_inside_the_guarded_initializer(operation):
    # Add-Type -TypeDefinition at top level would compile on every call, also when no native call is made.
    tree = PARSER.parse(script_text(operation).encode())
    source = script_text(operation).encode()

    def walk(node: Node, function: str | None) -> None:
        if node.type == "function_statement":
            name = next(c for c in node.children if c.type == "function_name")
            function = source[name.start_byte : name.end_byte].decode()
        if node.type == "command" and source[node.start_byte : node.end_byte].startswith(b"Add-Type -TypeDefinition"):
            assert function == "Initialize-CmfNative", f"Add-Type -TypeDefinition outside Initialize-CmfNative in {operation}"
        for child in node.children:
            walk(child, function)

    walk(tree.root_node, None)


def csharp_sources() -> list[str]:
    found = []
    for path in ALL_FILES:
        found += re.findall(r"Add-Type -TypeDefinition @'\n(.*?)\n'@", path.read_text(), re.DOTALL)
    return found


def test_there_is_csharp_to_check():
    assert csharp_sources()


def test_csharp_with_marshalled_structures_silences_cs0649():
    # A struct field that only the marshaller writes draws CS0649 ("never assigned"), and Windows
    # PowerShell 5.1's Add-Type fails on a warning unless it is silenced.
    harness = (REPO_ROOT / "tests" / "windows" / "CmfContract.psm1").read_text(encoding="utf-8")
    sources = csharp_sources() + re.findall(r"Add-Type -TypeDefinition @'\n(.*?)\n'@", harness, re.DOTALL)
    with_structures = [source for source in sources if re.search(r"\bstruct\b", source)]
    assert len(with_structures) >= 2
    for source in with_structures:
        assert "#pragma warning disable 649" in re.split(r"\bstruct\b", source, maxsplit=1)[0]


@pytest.mark.parametrize(
    ("construct", "pattern"),
    [
        ("interpolated string", r"\$\""),
        ("out variable declaration", r"\bout\s+var\b"),
        ("null-conditional operator", r"\?\.|\?\["),
        ("nameof", r"\bnameof\s*\("),
        ("expression-bodied member or lambda", r"=>"),
        ("auto-property initializer", r"\{\s*get;[^}]*\}\s*="),
    ],
)
def test_csharp_compiles_with_the_csharp_5_compiler_of_windows_powershell(construct, pattern):
    for source in csharp_sources():
        assert not re.search(pattern, source), f"C# 6+ {construct}: Windows PowerShell 5.1 cannot compile it"


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_no_windows_edge_traps_in_the_code(operation):
    text = code_of(script_text(operation))
    assert not re.search(r"SHA256\]::Create|SHA256Managed", text), "throws on a FIPS host"
    assert "2>&1" not in text, "Windows PowerShell 5.1 stops at the first stderr line under ErrorActionPreference Stop"
    assert not re.search(r"::Replace\([^)]*\$null", text), "PowerShell passes $null to a .NET string as ''"


def test_refusal_codes_of_the_contract_are_raised_by_the_scripts():
    sent = "\n".join(code_of(script_text(op)) for op in OPERATIONS)
    for code in (
        "ACCOUNT_NOT_FOUND",
        "DOMAIN_UNREACHABLE",
        "ACCOUNT_LOOKUP_FAILED",
        "DOMAIN_CONTROLLER",
        "CONSTRAINED_LANGUAGE",
        "LSA_ERROR",
        "UNKNOWN_RIGHT",
        "GROUP_NOT_FOUND",
        "REMOVAL_REFUSED",
        "SERVICE_NOT_FOUND",
        "FILE_CHANGED",
        "FILE_EXISTS",
        "FOLDER_NOT_FOUND",
    ):
        assert f"'{code}'" in sent or f'"{code}"' in sent, code


class _FailingAction:
    """win_powershell's answer when the script threw: the error record nests the real cause."""

    def __init__(self, error: dict) -> None:
        self.error = error

    def _execute_module(self, module_name: str, module_args: dict, task_vars: dict) -> dict:
        return {"failed": True, "changed": False, "result": {}, "error": [self.error], "msg": "script failed"}


def test_a_host_error_names_the_inner_cause_that_win_powershell_reports():
    # The shape win_powershell gives an ErrorRecord's exception: message, type, inner_exception.
    record = {
        "output": 'Exception calling "Start" with "0" argument(s): "Cannot start service DeadlineWorker on computer \'.\'."',
        "exception": {
            "message": 'Exception calling "Start" with "0" argument(s): "Cannot start service DeadlineWorker on computer \'.\'."',
            "type": "System.Management.Automation.MethodInvocationException",
            "inner_exception": {
                "message": "Cannot start service DeadlineWorker on computer '.'.",
                "type": "System.InvalidOperationException",
                "inner_exception": {
                    "message": "The service did not start due to a logon failure",
                    "type": "System.ComponentModel.Win32Exception",
                    "inner_exception": None,
                },
            },
        },
    }
    host = PowerShellHost(_FailingAction(record), {}, check_mode=False)
    with pytest.raises(Exception, match="due to a logon failure") as raised:
        host.read_file(r"C:\ProgramData\Amazon\Deadline\Config\worker.toml")
    # The wrapper's text already quotes the middle one: it is not repeated.
    assert str(raised.value).count("Cannot start service DeadlineWorker") == 1


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_every_operation_refuses_constrained_language_before_it_does_anything(operation):
    """WDAC or AppLocker run unsigned scripts in ConstrainedLanguage, which blocks Add-Type and most .NET
    types with errors that do not say why: each operation checks first, in its own text, and says so."""
    own = code_of((SCRIPTS / f"{operation}.ps1").read_text(encoding="utf-8"))
    check = own.find("if (Test-CmfLanguageRefused) { return }")
    assert check >= 0, f"{operation} does not check the language mode"
    work = re.search(r"Add-Type|New-Object|\[IO\.|\[ADSI\]|\[Microsoft\.Win32|Get-Agent|Get-Cmf|Invoke-|Read-Cmf|Resolve-Cmf|Assert-Cmf", own)
    assert work is None or work.start() > check, f"{operation} does {work.group(0)!r} before it checks the language mode"
    assert "CONSTRAINED_LANGUAGE" in (SCRIPTS / f"{operation}.ps1").read_text(encoding="utf-8"), "its header names the refusal"


class _AnsweringAction:
    def __init__(self, payload: dict) -> None:
        self.payload = payload

    def _execute_module(self, module_name: str, module_args: dict, task_vars: dict) -> dict:
        return {"changed": bool(self.payload.get("changed")), "result": self.payload}


def test_a_refusal_keeps_the_rest_of_the_answer_as_its_details():
    # A group change that failed half-way says what it changed; the controller must not drop that.
    added = [{"name": "jobs", "sid": "S-1-5-21-1-2-3-1001"}]
    payload = {"error_code": "GROUP_CHANGE_FAILED", "error": "added to jobs, then failed", "changed": True, "added": added}
    host = PowerShellHost(_AnsweringAction(payload), {}, check_mode=False)
    with pytest.raises(HostOperationError) as raised:
        host.call("set_group_membership", account="worker", groups=["jobs", "render"], state="present")
    assert (raised.value.code, raised.value.message, raised.value.changed) == ("GROUP_CHANGE_FAILED", "added to jobs, then failed", True)
    assert raised.value.details == {"changed": True, "added": payload["added"]}


def test_a_start_that_finds_the_service_running_is_a_start():
    # Between the status read and Start() the Service Control Manager's recovery (or an operator) may
    # start the service: 1056 ERROR_SERVICE_ALREADY_RUNNING then means it got there, not a failure;
    # 1062 ERROR_SERVICE_NOT_ACTIVE likewise after a stop. No simulator can race like that: held here.
    text = code_of(script_text("control_service"))
    assert "$ERROR_SERVICE_ALREADY_RUNNING = 1056" in text and "$ERROR_SERVICE_NOT_ACTIVE = 1062" in text
    assert "($Action -eq 'Start' -and $code -eq $ERROR_SERVICE_ALREADY_RUNNING)" in text
    assert "($Action -eq 'Stop' -and $code -eq $ERROR_SERVICE_NOT_ACTIVE)" in text


def test_a_start_whose_process_ends_during_the_wait_is_a_crash_not_a_timeout():
    # WaitForStatus('Running') times out as well when the process ended meanwhile: only a service still
    # start_pending has not reached running in time; a stopped one crashed, and its exit code says why.
    text = code_of(script_text("control_service"))
    wait = text[text.index("if (-not (Wait-Status $controller 'Running' $Timeout))") :]
    wait = wait[: wait.index("\n    }\n}")]
    timeout = wait.index("did not reach running")
    assert "if ($now -eq 'start_pending') {" in wait[:timeout], wait
    assert "the service's last exit code is" in text


def _agent_version_code() -> str:
    """The Python code read_agent_info gives the service's python.exe, as PowerShell builds it from
    its string literals (single-quoted, or double-quoted without anything PowerShell would expand)."""
    text = (SCRIPTS / "lib" / "AgentReading.ps1").read_text(encoding="utf-8")
    assignment = re.search(r"^\s*\$code = (.*?)\n(?!\s*\")", text, re.MULTILINE | re.DOTALL).group(1)
    parts = re.findall(r"'((?:[^']|'')*)'|\"([^\"]*)\"", assignment)
    assert re.fullmatch(r"(?:\s*(?:'(?:[^']|'')*'|\"[^\"]*\")\s*\+?)+\s*", assignment), "only string literals joined by +"
    code = ""
    for single, double in parts:
        assert "$" not in double and "`" not in double
        code += single.replace("''", "'") if single else double
    return code


def test_the_agent_version_code_runs_in_python_and_finds_the_installed_agent():
    # The code that travels to the service's python.exe: run here by a real Python, with the agent's
    # package installed (the test requirements pin it), as the service's Python runs it: -I -c "<code>".
    import importlib.metadata
    import importlib.util
    import json
    import subprocess
    import sys

    code = _agent_version_code()
    assert '"' not in code, "the code travels inside one double-quoted argument"
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    version, location = json.loads(done.stdout.strip().splitlines()[-1])
    assert version == importlib.metadata.version("deadline-cloud-worker-agent")
    assert Path(location) == Path(importlib.util.find_spec("deadline_worker_agent").origin).parent


def test_the_sandbox_user_is_disabled_before_it_first_exists():
    # With ADSI the first SetInfo() creates the account: the disabled flag must be set before it, so
    # that the self-test never makes an enabled account with a password, not even for an instant.
    text = code_of((SCRIPTS / "sandbox.ps1").read_text(encoding="utf-8"))
    creation = text[text.index("$computer.Create('user', $Name)") :]
    disabled = re.search(r"\$user\.Put\('UserFlags', (0x[0-9A-Fa-f]+)\)", creation)
    assert disabled and int(disabled.group(1), 16) & 0x2, "ADS_UF_ACCOUNTDISABLE"
    assert disabled.start() < creation.index("$user.SetInfo()")
    assert creation.count("$user.SetInfo()") == 1


def test_the_sandbox_removes_each_part_on_its_own():
    # One removal that fails must not keep the others from being made (each in its own try), and the
    # user is deleted only once its rights are gone (else they stay behind as an orphaned SID).
    text = code_of((SCRIPTS / "sandbox.ps1").read_text(encoding="utf-8"))
    absent = text[text.index("$left = ") :]
    for removal in ("[DeadlineCloudCmf.Lsa]::RemoveRights(", "$computer.Delete('user'", "$computer.Delete('group'", "[IO.Directory]::Delete($folder"):
        before = absent[: absent.index(removal)]
        assert before.count("try {") - before.count("catch {") == 1, f"{removal} is not alone in its try"
    assert absent.index("$rightsGone = $true") < absent.index("if ($rightsGone)") < absent.index("$computer.Delete('user'")


def test_the_sandbox_folder_is_made_closed_and_trusted_only_when_no_one_else_may_write_it():
    # Every local user may create folders in C:\Windows\Temp: a planted cmf-selftest (marker included) would
    # take the self-test's writes as administrator. Made with a protected DACL for SYSTEM and Administrators,
    # owned by Administrators; checked before reuse or deletion and right after it is made.
    text = code_of((SCRIPTS / "sandbox.ps1").read_text(encoding="utf-8"))
    assert "$TrustedSids = @('S-1-5-18', 'S-1-5-32-544')" in text
    security = text[text.index("function New-SandboxFolderSecurity {") : text.index("function Get-FolderDistrust {")]
    assert "$security.SetAccessRuleProtection($true, $false)" in security
    assert "SetOwner((New-Object Security.Principal.SecurityIdentifier 'S-1-5-32-544'))" in security
    assert "foreach ($sid in $TrustedSids)" in security and "FullControl" in security
    distrust = text[text.index("function Get-FolderDistrust {") : text.index("function Get-ForeignReason {")]
    for check in ("[IO.FileAttributes]::ReparsePoint", "$TrustedSids -notcontains $owner", "-band $WriteRights"):
        assert check in distrust, check
    write_rights = re.search(r"^\$WriteRights = (.*)$", text, re.MULTILINE).group(1)
    mask = 0
    for bit in write_rights.split(" -bor "):
        mask |= int(bit, 16)
    from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.sandbox import WRITE_RIGHTS

    assert mask == WRITE_RIGHTS  # the simulator judges a DACL as the script does
    foreign = text[text.index("function Get-ForeignReason {") :]
    assert foreign.index("Get-FolderDistrust") < foreign.index("$MarkerFile")
    present = text[text.index("if ($State -eq 'present') {") :]
    made = present.index("[IO.Directory]::CreateDirectory($folder, (New-SandboxFolderSecurity))")
    assert made < present.index("$distrust = Get-FolderDistrust") < present.index("[IO.File]::WriteAllBytes(")
    assert present.index("[IO.File]::WriteAllBytes(") < present.index("$computer.Create('user', $Name)")  # the folder first
    assert "CreateDirectory($folder)" not in text  # never a folder that inherits the temp folder's DACL


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_the_compile_table_says_which_scripts_hold_csharp(operation):
    # The benchmark's table and the decision on caching rest on it: it must say what the scripts do.
    from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.powershell_host import CSHARP_COMPILES, NEVER

    holds = bool(re.search(r"Add-Type -TypeDefinition", code_of(script_text(operation))))
    assert (CSHARP_COMPILES[operation] != NEVER) is holds


def test_the_csharp_is_compiled_only_by_functions_that_call_it():
    # Initialize-CmfNative compiles: it is called only right before a call of the LSA or netapi32 types.
    sent = "\n".join(code_of(script_text(op)) for op in OPERATIONS)
    callers = re.findall(r"(?<!function )Initialize-CmfNative\b[^\n{]*\n(.{0,400})", sent, re.DOTALL)
    assert len(callers) >= 4
    for after in callers:
        assert re.search(r"\[DeadlineCloudCmf\.(Lsa|NetApi|ProcessToken)\]", after), after[:200]
