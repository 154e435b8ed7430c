# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The contract vectors, run against the simulated worker. The same files drive the Windows suite
(tests/windows/), so both hosts answer the same cases written from Windows facts."""

from __future__ import annotations

import copy
import shutil

import pytest
import simworker
from contract_vectors import (
    TYPE_MATCHER_CASES,
    TYPE_MATCHER_DOCUMENT,
    WINDOWS_SCRIPTS,
    WINDOWS_VECTORS_JSON,
    after_mismatches,
    build_state,
    load_vectors,
    mismatches,
    stale_scripts,
    windows_json,
    windows_scripts,
)

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.errors import HostOperationError
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.operations import OPERATIONS
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.state import run_operation

VECTORS = load_vectors()
CASES = [(operation, case) for operation, document in VECTORS.items() for case in document["cases"]]
CASE_KEYS = {"name", "why", "host", "parameters", "expect", "after", "windows_skip"}


def run_case(tmp_path, operation: str, case: dict) -> list[str]:
    """Every way the simulated worker fails ``case`` ([] when it passes)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    state, names = build_state(case["host"])
    path = simworker.save_state(tmp_path / "state.yml", state)
    parameters = names.expand(case["parameters"])
    expect = names.expand(case["expect"])
    try:
        result = run_operation(str(path), operation, parameters)
    except HostOperationError as error:
        result = {**error.details, "error_code": error.code, "error": error.message}
    problems = mismatches(expect, result)
    if "error_code" not in expect and "error_code" in result:
        problems.append(f"refused: {result['error_code']}: {result['error']}")
    return problems + after_mismatches(names.expand(case.get("after") or {}), simworker.load_state(path), names)


@pytest.mark.parametrize(("operation", "case"), CASES, ids=[f"{op}: {case['name']}" for op, case in CASES])
def test_simulated_worker_meets_the_vector(tmp_path, operation, case):
    assert run_case(tmp_path, operation, case) == []


@pytest.mark.parametrize(("operation", "case"), CASES, ids=[f"{op}: {case['name']}" for op, case in CASES])
def test_vector_is_well_formed(operation, case):
    assert VECTORS[operation]["operation"] == operation
    assert set(case) <= CASE_KEYS and {"name", "why", "host", "parameters", "expect"} <= set(case)
    assert case["why"].strip() and "\n" not in case["why"].strip()  # one line: the Windows fact
    assert set(case["parameters"]) == OPERATIONS[operation].parameters
    if case["host"].get("faults"):
        assert case.get("windows_skip"), "a simulator fault cannot be made on a Windows host: say why in windows_skip"


def test_every_operation_has_vectors():
    assert sorted(VECTORS) == sorted(OPERATIONS)
    assert all(VECTORS[op]["cases"] for op in OPERATIONS)


def test_every_operation_refuses_constrained_language():
    for operation in OPERATIONS:
        refusing = [
            case
            for case in VECTORS[operation]["cases"]
            if (case["host"].get("language_mode"), case["expect"].get("error_code")) == ("ConstrainedLanguage", "CONSTRAINED_LANGUAGE")
        ]
        assert refusing, f"{operation} has no ConstrainedLanguage vector"


def test_case_names_are_unique_per_operation():
    for operation, document in VECTORS.items():
        names = [case["name"] for case in document["cases"]]
        assert len(names) == len(set(names)), operation


@pytest.mark.parametrize(
    ("operation", "name", "mutate"),
    [
        # a wrong value in a result
        ("read_file", "bytes with a BOM and CRLF come back exactly", lambda c: c["expect"].update(sha256="0" * 64)),
        # a refusal expected where the host succeeds
        ("write_file", "create a file that must not exist", lambda c: c.update(expect={"error_code": "FILE_EXISTS"})),
        # a success expected where the host refuses
        ("read_account", "an unknown account is ACCOUNT_NOT_FOUND", lambda c: c.update(expect={"sid": "S-1-5-18"})),
        # a host left otherwise than the vector says
        ("control_service", "a stop while busy interrupts the sessions", lambda c: c["after"]["service"].update(interrupted_sessions=[])),
        # an ACL the host does not keep, and a folder that the host does not have
        (
            "write_file",
            "a replace keeps the target's ACL and leaves no temporary file",
            lambda c: c["after"]["acls"].update({"{root}\\cfg.toml": "D:P(A;;FA;;;SY)"}),
        ),
        ("write_file", "a folder that does not exist is FOLDER_NOT_FOUND", lambda c: c["parameters"].update(path="{root}\\cfg.toml")),
        # a half-way change reported as none
        ("set_group_membership", "a change that fails half-way says what it changed", lambda c: c["expect"].update(changed=False)),
        # a host in FullLanguage expected to refuse ConstrainedLanguage
        ("sandbox", "ConstrainedLanguage is refused before anything is read or changed", lambda c: c["host"].pop("language_mode")),
        # an exact list that is not exact
        ("read_agent_info", "a service that runs sessions is busy", lambda c: c["expect"]["sessions"].update(ids={"$exactly": ["session-1"]})),
    ],
)
def test_a_wrong_vector_is_caught(tmp_path, operation, name, mutate):
    case = copy.deepcopy(next(c for c in VECTORS[operation]["cases"] if c["name"] == name))
    assert run_case(tmp_path / "right", operation, case) == []
    mutate(case)
    assert run_case(tmp_path / "wrong", operation, case) != []


@pytest.mark.parametrize(("key", "type_name", "matches"), TYPE_MATCHER_CASES)
def test_the_type_matcher_tells_the_types_apart(key, type_name, matches):
    # The same table as the harness's own test in tests/windows/Contract.Tests.ps1 (test_windows_suite.py holds them equal).
    assert (mismatches({key: {"$type": type_name}}, TYPE_MATCHER_DOCUMENT) == []) is matches


REGENERATE = "regenerate it from tests/ with: python -c 'import conftest, contract_vectors as v; v.export_windows_suite()'"


def test_the_windows_suite_reads_the_current_vectors():
    """tests/windows/vectors.json is these files as JSON."""
    assert WINDOWS_VECTORS_JSON.read_bytes() == windows_json().encode("utf-8"), f"tests/windows/vectors.json is stale: {REGENERATE}"


def test_the_windows_suite_runs_the_scripts_as_the_controller_sends_them():
    """tests/windows/scripts/<operation>.ps1 are the bytes PowerShellHost sends to win_powershell, byte for
    byte (a CRLF checkout would differ too): the suite on Windows runs exactly them."""
    assert stale_scripts() == [], f"tests/windows/scripts is stale: {REGENERATE}"


def test_the_exported_scripts_are_ascii():
    # The harness reads them with ReadAllText and win_powershell sends a string: ASCII reads alike
    # whatever the host's code page, so what runs there is what the controller sends.
    for name, data in windows_scripts().items():
        assert data.isascii(), name


@pytest.mark.parametrize(
    ("change", "stale"),
    [
        (lambda folder: (folder / "read_file.ps1").write_bytes((folder / "read_file.ps1").read_bytes().replace(b"\n", b"\r\n")), ["read_file.ps1"]),
        (lambda folder: (folder / "write_file.ps1").unlink(), ["write_file.ps1"]),
        (lambda folder: (folder / "retired.ps1").write_bytes(b"param()\n"), ["retired.ps1"]),
    ],
    ids=["crlf", "missing", "extra"],
)
def test_a_stale_export_is_caught(tmp_path, change, stale):
    folder = tmp_path / "scripts"
    shutil.copytree(WINDOWS_SCRIPTS, folder)
    assert stale_scripts(folder) == []
    change(folder)
    assert stale_scripts(folder) == stale
