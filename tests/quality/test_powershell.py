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

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.host._operations import OPERATIONS
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.host._powershell import (
    PowerShellHost,
    powershell_parameter_name,
    script_text,
)
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.host._simulated import _registry

SCRIPTS = Path(__file__).resolve().parents[2] / "plugins" / "plugin_utils" / "host" / "powershell"
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
