# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generative fidelity: real worker.toml files, mutated as operators and tools do, read by the real
agent (deadline-cloud-worker-agent: ConfigFile.load and WorkerSettings, agent_truth.real_agent) and by
the agent rules (_agent.startup.startup_verdict and _agent.rules.describe). Every disagreement fails, and hypothesis shrinks it.

The same mutated files are handed to worker_toml with the role's settings: it either refuses them,
or writes bytes the real agent loads with run_jobs_as_agent_user true and no windows_job_user.

Bounded: CMF_FIDELITY_EXAMPLES examples (150 by default), derandomized unless HYPOTHESIS_PROFILE is
``cmf-random``. More on demand: ``CMF_FIDELITY_EXAMPLES=5000 HYPOTHESIS_PROFILE=cmf-random pytest tests/property``.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import agent_truth
import pytest
import simworker
import yaml

pytest.importorskip("deadline_worker_agent.config.config_file", reason="needs deadline-cloud-worker-agent")
hypothesis = pytest.importorskip("hypothesis", reason="needs hypothesis (requirements-test.txt)")
from deadline_worker_agent.config.errors import ConfigurationError  # noqa: E402
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.configuration import set_hypothesis_home_dir  # noqa: E402

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import config_file as agent_config  # noqa: E402
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import rules as agent_rules  # noqa: E402
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import settings as agent_settings  # noqa: E402
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import startup as agent_startup  # noqa: E402
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent.worker_toml import (  # noqa: E402
    ABSENT,
    Setting,
    WorkerTomlError,
    apply_settings,
    validate,
)

# Hypothesis keeps caches in .hypothesis/ of the working directory: not in the source tree (a
# collection build would pack it).
set_hypothesis_home_dir(str(Path(tempfile.gettempdir()) / f"cmf-hypothesis-{os.getuid()}"))
settings.register_profile("cmf-fidelity", derandomize=True, database=None, deadline=None)
settings.register_profile("cmf-random", derandomize=False, database=None, deadline=None)
_PROFILE_NAME = os.environ.get("HYPOTHESIS_PROFILE", "")
PROFILE = settings.get_profile(_PROFILE_NAME if _PROFILE_NAME in ("cmf-fidelity", "cmf-random") else "cmf-fidelity")
EXAMPLES = int(os.environ.get("CMF_FIDELITY_EXAMPLES", "150"))

ROLE_SETTINGS = [
    Setting("os", "run_jobs_as_agent_user", True),
    Setting("os", "windows_job_user", state=ABSENT),
    Setting("os", "impersonation", state=ABSENT),
]
ARN = "arn:aws:secretsmanager:us-west-2:123456789012:secret/render-password"
FARM = "farm-0123456789abcdef0123456789abcdef"
FLEET = "fleet-0123456789abcdef0123456789abcdef"


# ---------------------------------------------------------------------------------------------
# The real files


def installer_example() -> str:
    """worker.toml of the collection's installer example state (always in the source tree)."""
    state = yaml.safe_load((simworker.EXAMPLES / "installer-default.yml").read_text(encoding="utf-8"))
    return state["files"][simworker.WORKER_TOML]["text"]


def shared_examples() -> dict[str, str]:
    folder = simworker.SHARED / "fixtures"
    files = [*folder.glob("worker.toml*"), *(folder / "history").glob("worker.toml*")] if folder.exists() else []
    return {f"{p.parent.name}/{p.name}": p.read_text(encoding="utf-8") for p in sorted(files) if p.is_file()}


BASES = {"installer": installer_example(), **shared_examples()}


def test_the_shared_fixtures_are_here_or_the_skip_says_so():
    if not (simworker.SHARED / "fixtures").exists():
        pytest.skip("../shared/fixtures is absent beside this clone: only the installer example is mutated")
    assert len(BASES) > 1


# ---------------------------------------------------------------------------------------------
# Mutations

HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
ASSIGNMENT = re.compile(r"^(\s*)([A-Za-z0-9_.\"'-]+)\s*=\s*(.*)$")
COMMENTED = re.compile(r"^#\s*([A-Za-z0-9_.\"'-]+)\s*=\s*(.*)$")

KEYS = sorted({*agent_config.KNOWN_KEYS, "impersonation"})
OTHER_KEYS = ["run_jobs_as_agent_users", "jobs_run_as_agent_user", '"amount.slots"', '"attr.groups"', '"acme:attr.x"', "Run_Jobs_As_Agent_User"]
VALUES = st.sampled_from(
    [
        "true", "false", '"true"', '"yes"', '"no"', '"maybe"', '""', "0", "1", "2", "-1", "1.0", "0.0", "-1.5", "nan", "inf",
        "[]", '["a"]', "[1]", '[["run_jobs_as_agent_user", true]]', "{}", "{ a = 1 }", "2024-01-01",
        f'"{FARM}"', f'"{FLEET}"', '"farm-123"', '"job-user"', '"render"', '"service-selected"', '"python"',
        '"C:/ProgramData/Amazon/Deadline/Logs"', f'"{ARN}"', '"x"', '"CORP\\\\render"', '"render@corp.example"',
    ]
)
GOOD_VALUES = {
    "bool": ["true", "false"],
    "float": ["30", "0.5"],
    "path": ['"C:/ProgramData/Amazon/Deadline/Logs"'],
    "enum": ['"service-selected"', '"python"'],
}


def fitting_value(key: str) -> st.SearchStrategy[str]:
    """A value of the key's own type (so that more mutated files get past the agent's model)."""
    known = agent_config.KNOWN_KEYS.get(key)
    if known is None:
        return st.sampled_from(["true", "[\"a\"]", "2"])
    if known.key == "farm_id":
        return st.just(f'"{FARM}"')
    if known.key == "fleet_id":
        return st.just(f'"{FLEET}"')
    if known.key == "posix_job_user":
        return st.just('"user:group"')
    if known.key == "windows_job_user_password_arn":
        return st.just('"arn:aws:secretsmanager:us-west-2:123456789012:secret/pw"')
    if known.key == "identifier":
        return st.just('"0b5ad2b8-2f43-4c55-9f4a-8d2f0a6a1e3c"')
    return st.sampled_from(GOOD_VALUES.get(known.kind, ['"job-user"', '"render"']))


TABLE_NAMES = ["worker", "aws", "logging", "os", "capabilities", "capabilities.amounts", "capabilities.attributes", "telemetry", "loging", "os.extra"]


def headers(lines: list[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if HEADER.match(line) and not line.lstrip().startswith("#")]


@st.composite
def line_mutation(draw, lines: list[str]) -> list[str]:
    lines = list(lines)
    kind = draw(
        st.sampled_from(
            ["insert"] * 6 + ["replace"] * 3 + ["uncomment"] * 4 + ["move_key"] * 3 + ["move_block"] * 2
            + ["drop_header", "duplicate_header", "rename_header", "delete_block", "dotted", "inline"]
        )
    )
    key = draw(st.sampled_from(KEYS + OTHER_KEYS))
    value = draw(st.one_of(VALUES, fitting_value(key)))
    marks = headers(lines)
    if kind == "insert":
        where = draw(st.sampled_from(["top", "end", *marks]))
        line = f"{key} = {value}"
        if where == "top":
            return [line, *lines]
        if where == "end":
            return [*lines, line]
        end = next((m for m in marks if m > where), len(lines))
        if any((m := ASSIGNMENT.match(other)) and m.group(2) == key for other in lines[where + 1 : end]):
            return lines  # the table has it already: TOML refuses a second one (drawn often enough elsewhere)
        return [*lines[: where + 1], line, *lines[where + 1 :]]
    if kind == "replace":
        active = [i for i, line in enumerate(lines) if ASSIGNMENT.match(line) and not line.lstrip().startswith("#")]
        if not active:
            return lines
        i = draw(st.sampled_from(active))
        indent, name, _old = ASSIGNMENT.match(lines[i]).groups()
        lines[i] = f"{indent}{name} = {value}"
        return lines
    if kind == "move_key":  # an assignment taken out of its table and put under another header (or at the end)
        active = [i for i, line in enumerate(lines) if ASSIGNMENT.match(line) and not line.lstrip().startswith("#")]
        if not active:
            return lines
        i = draw(st.sampled_from(active))
        line = lines.pop(i)
        if line.rstrip().endswith(("[", "{", '"""', "\'\'\'")):
            return [*lines[:i], line, *lines[i:]]  # a multi-line value stays
        targets = headers(lines)
        where = draw(st.sampled_from(["end", *targets]))
        if where == "end":
            return [*lines, line]
        return [*lines[: where + 1], line, *lines[where + 1 :]]
    if kind == "uncomment":
        commented = [i for i, line in enumerate(lines) if COMMENTED.match(line.strip())]
        if not commented:
            return lines
        i = draw(st.sampled_from(commented))
        lines[i] = lines[i].strip().lstrip("#").strip()
        return lines
    if not marks and kind in ("drop_header", "duplicate_header", "rename_header", "move_block", "delete_block"):
        return lines
    if kind == "drop_header":
        del lines[draw(st.sampled_from(marks))]
        return lines
    if kind == "duplicate_header":
        i = draw(st.sampled_from(marks))
        return [*lines, lines[i]]
    if kind == "rename_header":
        i = draw(st.sampled_from(marks))
        lines[i] = f"[{draw(st.sampled_from(TABLE_NAMES))}]"
        return lines
    if kind in ("move_block", "delete_block"):
        start = draw(st.sampled_from(marks))
        end = next((m for m in marks if m > start), len(lines))
        block = lines[start:end]
        rest = lines[:start] + lines[end:]
        return rest if kind == "delete_block" else [*rest, *block]
    # A table rewritten as dotted keys or as an inline table, at the top of the file.
    start = draw(st.sampled_from(marks))
    table = HEADER.match(lines[start]).group(1)
    end = next((m for m in marks if m > start), len(lines))
    pairs = [ASSIGNMENT.match(line).groups()[1:] for line in lines[start + 1 : end] if ASSIGNMENT.match(line)]
    if lines[start].lstrip().startswith("[[") or any(v.rstrip().endswith(("[", "{", '"""', "\'\'\'")) for _k, v in pairs):
        return lines  # arrays of tables and multi-line values stay as they are
    rest = lines[:start] + [line for line in lines[start + 1 : end] if not ASSIGNMENT.match(line)] + lines[end:]
    if kind == "dotted":
        return [*(f"{table}.{k} = {v}" for k, v in pairs), *rest]
    return [f"{table} = {{ {', '.join(f'{k} = {v}' for k, v in pairs)} }}", *rest]  # inline


@st.composite
def worker_toml(draw) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(BASES)))
    lines = BASES[name].split("\n")
    for _round in range(draw(st.integers(min_value=0, max_value=3))):
        lines = draw(line_mutation(lines))
    text = "\n".join(lines)
    encoding = draw(st.sampled_from(["utf-8"] * 20 + ["crlf"] * 3 + ["bom", "utf-16", "invalid-utf-8", "bom+invalid"]))
    if encoding == "crlf":
        return name, text.replace("\n", "\r\n").encode()
    if encoding == "utf-16":
        return name, text.encode("utf-16")
    data = text.encode()
    if "invalid" in encoding:
        at = draw(st.integers(min_value=0, max_value=len(data)))
        data = data[:at] + b"\xff" + data[at:]
    if encoding.startswith("bom"):
        data = b"\xef\xbb\xbf" + data
    return name, data


# DEADLINE_WORKER_CAPABILITIES is JSON: valid, refused by the Capabilities model, or not JSON at all.
CAPABILITIES_VALUES = [
    '{"amounts": {}, "attributes": {}}',
    '{"amounts": {"amount.slots": 4}, "attributes": {"attr.pool": ["lighting"]}}',
    '{"amounts": {}}',
    '{"amounts": {"slots": 4}, "attributes": {}}',
    '{"amounts": {"amount.slots": -1}, "attributes": {}}',
    '{"amounts": {"amount.worker.gpu": 2}, "attributes": {"attr.pool": "lighting"}}',
    "[1, 2]",
    "not json",
    "",
]


@st.composite
def environment(draw) -> dict[str, str]:
    """The service's variables: mostly the farm and fleet ids (which the older examples lack), and
    sometimes the opt-in, the job user and the capabilities, valid or not."""
    env = {}
    choices = {
        "DEADLINE_WORKER_FARM_ID": [FARM] * 16 + ["farm-123", None],
        "DEADLINE_WORKER_FLEET_ID": [FLEET] * 16 + ["fleet-x", None],
        agent_settings.OPT_IN_VARIABLE: [None] * 6 + ["true", "false", "1", "0", "yes", "No", "on", "maybe", ""],
        agent_settings.JOB_USER_VARIABLE: [None] * 8 + ["job-user", "render", "", "CORP\\render", "render@corp.example"],
        "DEADLINE_WORKER_WINDOWS_JOB_USER_PASSWORD_ARN": [None] * 6 + [ARN, "arn:aws:secretsmanager:bad"],
        agent_settings.CAPABILITIES_VARIABLE: [None] * 12 + CAPABILITIES_VALUES,
    }
    for name, values in choices.items():
        value = draw(st.sampled_from(values))
        if value is not None:
            env[name] = value
    return env


ENVIRONMENT = environment()


# ---------------------------------------------------------------------------------------------
# The comparison


def same_error(ours: str | None, real: str | None, stage: str | None) -> bool:
    if stage == "config_file":  # pydantic's rendering, with its "(type=...)" tails set aside
        return ours is not None and real is not None and agent_truth.pydantic_errors(ours) == agent_truth.pydantic_errors(real) and (
            ours.split("\n", 1)[0] == real.split("\n", 1)[0]
        )
    return ours == real


# Findings that say the agent stops at start.
REFUSALS = {"CONFIG_ENCODING", "CONFIG_INVALID", "LEGACY_IMPERSONATION_KEY", "JOB_USER_CONFLICT", "AGENT_STARTUP_ERROR"}


def check_agreement(data: bytes, env: dict[str, str], folder: Path) -> None:
    path = str(folder / "worker.toml")
    real = agent_truth.real_agent(data, folder, env)
    verdict = agent_startup.startup_verdict(data, agent_settings.service_environment({}, [f"{k}={v}" for k, v in env.items()]), path=path)
    info = agent_rules.describe(agent_truth.host_reading(path, data, env, state="stopped"))

    assert verdict.starts is real.starts, f"real agent: {real.error!r}; ours: {verdict.error!r}"
    assert info["startup"]["starts"] is real.starts
    refusals = {f["id"] for f in info["findings"]} & REFUSALS
    if not real.starts:
        assert same_error(verdict.error, real.error, verdict.stage), f"\nreal: {real.error}\nours: {verdict.error}"
        assert refusals, info["findings"]  # a finding says why the agent stops
        assert info["ready"] is False
        return
    assert not refusals, info["findings"]
    resolved = info["settings"]
    assert resolved["run_jobs_as_agent_user"]["value"] is real.run_jobs_as_agent_user
    assert resolved["windows_job_user"]["value"] == real.windows_job_user
    assert info["ready"] is bool(real.run_jobs_as_agent_user and real.windows_job_user is None), info["findings"]


def check_role_edit(data: bytes, folder: Path) -> None:
    """The role's worker_toml write: refused, or read back by the agent as opted in without a job user."""
    path = str(folder / "worker.toml")
    try:
        edit = apply_settings(data, ROLE_SETTINGS, path)
    except WorkerTomlError:
        return
    if validate(edit.text, path, edit.original_text).errors:  # as the worker_toml action validates
        return
    loaded = agent_truth.load_config_file(edit.data, folder)
    assert loaded.os.run_jobs_as_agent_user is True, edit.text
    assert loaded.os.windows_job_user is None, edit.text
    try:
        before = agent_truth.load_config_file(data, folder)
    except (ConfigurationError, UnicodeDecodeError):  # the agent refused the file before the edit: nothing to keep
        return
    # Everything else the agent reads is what it read before the edit.
    changed = {"run_jobs_as_agent_user", "windows_job_user"}
    assert {k: v for k, v in loaded.dict().items() if k != "os"} == {k: v for k, v in before.dict().items() if k != "os"}
    assert {k: v for k, v in loaded.os.dict().items() if k not in changed} == {k: v for k, v in before.os.dict().items() if k not in changed}


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory(prefix="cmf-fidelity-") as name:
        yield Path(name)


# The first disagreement this test found: bad UTF-8 behind a BOM (tomllib decodes before it parses).
@example(case=("installer", b"\xef\xbb\xbf[worker]\n\xff"), env={})
@settings(PROFILE, max_examples=EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=worker_toml(), env=ENVIRONMENT)
def test_agent_rules_and_worker_toml_agree_with_the_real_agent(case, env, folder):
    _name, data = case
    check_agreement(data, env, folder)
    check_role_edit(data, folder)


# Disagreements of earlier agent_config/agent_rules (now _agent/) with the real agent, found by this test (a known
# key appended at the end of the file, where it lands in [capabilities.attributes]) and by the
# experiments with the agent's models behind it; each one is fixed and kept here.
_INSTALLER = installer_example()
REGRESSIONS: dict[str, tuple[bytes, dict[str, str]]] = {
    "bom_then_invalid_utf8": (b"\xef\xbb\xbf[worker]\n\xff", {}),
    "known_key_appended_lands_in_attributes": ((_INSTALLER + "allow_ec2_instance_profile = false\n").encode(), {}),
    "opt_in_appended_lands_in_attributes": ((_INSTALLER + "run_jobs_as_agent_user = true\n").encode(), {}),
    "bool_becomes_a_str": (_INSTALLER.replace("[aws]\n", "[aws]\nprofile = true\n").encode(), {}),
    "a_number_is_no_path": (_INSTALLER.replace("[worker]\n", "[worker]\nworker_persistence_dir = 5\n").encode(), {}),
    "float_one_is_true": (_INSTALLER.replace("[os]\n", "[os]\nrun_jobs_as_agent_user = 1.0\n").encode(), {}),
    "bool_is_a_float": (_INSTALLER.replace("[logging]\n", "[logging]\nhost_metrics_logging_interval_seconds = true\n").encode(), {}),
    "a_bool_is_no_enum_member": (_INSTALLER.replace("[worker]\n", "[worker]\nsession_runtime = true\n").encode(), {}),
    "max_length_words": (_INSTALLER.replace("[aws]\n", '[aws]\nprofile = "' + "p" * 65 + '"\n').encode(), {}),
    "a_section_of_pairs_is_a_dict": (
        ('os = [["run_jobs_as_agent_user", true]]\n' + _INSTALLER.replace("[os]\n", "[os_before]\n")).encode(),
        {},
    ),
    # DEADLINE_WORKER_CAPABILITIES: the file is loaded before the variable is parsed as JSON
    "capabilities_not_json_behind_a_bom": (b"\xef\xbb\xbf" + _INSTALLER.encode(), {"DEADLINE_WORKER_CAPABILITIES": "not json"}),
    "capabilities_not_json": (_INSTALLER.encode(), {"DEADLINE_WORKER_CAPABILITIES": "not json"}),
    "capabilities_without_attributes": (_INSTALLER.encode(), {"DEADLINE_WORKER_CAPABILITIES": '{"amounts": {}}'}),
    "unparseable_opt_in_variable": (_INSTALLER.encode(), {"DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER": "enabled"}),
    "empty_job_user_variable": (_INSTALLER.encode(), {"DEADLINE_WORKER_WINDOWS_JOB_USER": ""}),
    "impersonation_hides_the_sections_other_errors": (
        _INSTALLER.replace("[os]\n", "[os]\nimpersonation = false\nretain_session_dir = 2\n").encode(),
        {},
    ),
}


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_regressions_agree_with_the_real_agent(name, tmp_path):
    data, env = REGRESSIONS[name]
    check_agreement(data, env, tmp_path)
    check_role_edit(data, tmp_path)
