# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The contract vectors, run against the simulated worker. The same files drive the Windows suite
(tests/windows/), so both hosts answer the same cases written from Windows facts."""

from __future__ import annotations

import copy

import pytest
import simworker
from contract_vectors import WINDOWS_VECTORS_JSON, after_mismatches, build_state, load_vectors, mismatches, windows_json

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
        result = {"error_code": error.code, "error": error.message}
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


def test_every_operation_has_vectors():
    assert sorted(VECTORS) == sorted(OPERATIONS)
    assert all(VECTORS[op]["cases"] for op in OPERATIONS)


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
        # an exact list that is not exact
        ("read_agent_info", "a service that runs sessions is busy", lambda c: c["expect"]["sessions"].update(ids={"$exactly": ["session-1"]})),
    ],
)
def test_a_wrong_vector_is_caught(tmp_path, operation, name, mutate):
    case = copy.deepcopy(next(c for c in VECTORS[operation]["cases"] if c["name"] == name))
    assert run_case(tmp_path / "right", operation, case) == []
    mutate(case)
    assert run_case(tmp_path / "wrong", operation, case) != []


def test_the_windows_suite_reads_the_current_vectors():
    """tests/windows/vectors.json is these files as JSON; regenerate it with
    `python -c 'import contract_vectors as v; v.WINDOWS_VECTORS_JSON.write_text(v.windows_json())'` from tests/."""
    assert WINDOWS_VECTORS_JSON.read_text(encoding="utf-8") == windows_json(), "tests/windows/vectors.json is stale"
