# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""worker.toml editing over the shapes real workers hold, read back by the real agent's loader."""

from __future__ import annotations

import difflib
from pathlib import Path

import agent_truth
import pytest
import simworker

try:
    import tomllib
except ImportError:  # Python 3.10: ansible-test units on ansible-core 2.16 and 2.17
    import tomli as tomllib

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent.worker_toml import (
    ABSENT,
    Setting,
    WorkerTomlError,
    apply_settings,
    check_settings,
    validate,
)

PATH = r"C:\ProgramData\Amazon\Deadline\Config\worker.toml"
OPT_IN = [
    Setting("os", "run_jobs_as_agent_user", True),
    Setting("os", "windows_job_user", state=ABSENT),
    Setting("os", "impersonation", state=ABSENT),
]
MINIMAL = b"[worker]\n[aws]\n[logging]\n[os]\n[capabilities.amounts]\n[capabilities.attributes]\n"


def agent_example() -> bytes:
    """The example worker.toml the installed agent release ships (and its installer copies)."""
    import deadline_worker_agent

    return (Path(deadline_worker_agent.__file__).parent / "installer" / "worker.toml.example").read_bytes()


agent_loads = agent_truth.load_config_file


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(True), after.splitlines(True), n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_the_agents_own_example_gets_the_opt_in_on_its_commented_line_and_nothing_else(tmp_path):
    data = agent_example()
    edit = apply_settings(data, OPT_IN, PATH)
    assert changed_lines(data.decode(), edit.text) == ["-# run_jobs_as_agent_user = true\n", "+run_jobs_as_agent_user = true\n"]
    assert edit.previous == {"os": {"run_jobs_as_agent_user": None, "windows_job_user": None, "impersonation": None}}
    assert agent_loads(edit.data, tmp_path).os.run_jobs_as_agent_user is True
    assert validate(edit.text, PATH).errors == []
    assert apply_settings(edit.data, OPT_IN, PATH).changed is False


@pytest.mark.parametrize("name", ["worker.toml.example-0.27", "worker.toml.example-0.33.6"])
def test_shipped_examples_take_the_opt_in_in_place_of_their_commented_example(shared, name, tmp_path):
    data = shared("fixtures", name).read_bytes()
    edit = apply_settings(data, OPT_IN, PATH)
    assert changed_lines(data.decode(), edit.text) == ["-# run_jobs_as_agent_user = true\n", "+run_jobs_as_agent_user = true\n"]
    loaded = agent_loads(edit.data, tmp_path)
    assert loaded.os.run_jobs_as_agent_user is True
    assert loaded.os.windows_job_user is None


def history_files():
    folder = simworker.SHARED / "fixtures" / "history"
    return sorted(folder.glob("worker.toml*")) if folder.exists() else []


@pytest.mark.parametrize("path", history_files(), ids=lambda p: p.name)
def test_every_historical_example_keeps_all_but_the_changed_lines(path, tmp_path):
    data = path.read_bytes()
    edit = apply_settings(data, OPT_IN, PATH)
    after = tomllib.loads(edit.text)
    assert after["os"]["run_jobs_as_agent_user"] is True
    assert "windows_job_user" not in after["os"] and "impersonation" not in after["os"]
    removed = [line for line in changed_lines(data.decode(), edit.text) if line.startswith("-")]
    # only lines holding one of the three keys (commented or not) ever change
    assert all(any(k in line for k in ("run_jobs_as_agent_user", "windows_job_user", "impersonation")) for line in removed)
    before = tomllib.loads(data.decode())
    for table, values in before.items():
        for key, value in (values.items() if isinstance(values, dict) else []):
            if key not in ("run_jobs_as_agent_user", "windows_job_user", "impersonation"):
                assert after[table][key] == value
    # The real agent reads the opt-in back from every edited example (the Windows-only one, which it
    # refused for its impersonation key, included), and nothing else it reads has moved.
    edited = agent_loads(edit.data, tmp_path)
    assert edited.os.run_jobs_as_agent_user is True and edited.os.windows_job_user is None
    if b"\nimpersonation = " not in data:
        original = agent_loads(data, tmp_path)
        assert (edited.worker, edited.aws, edited.logging) == (original.worker, original.aws, original.logging)
        assert edited.os.shutdown_on_stop == original.os.shutdown_on_stop


def test_windows_only_example_loses_its_active_impersonation_line_as_a_comment(shared, tmp_path):
    data = shared("fixtures", "history", "worker.toml.windows.example-2023-09-20-ef0d86ad").read_bytes()
    assert b"\nimpersonation = false" in data
    edit = apply_settings(data, OPT_IN, PATH)
    assert "# impersonation = false" in edit.text
    assert "impersonation" not in tomllib.loads(edit.text)["os"]


def test_crlf_files_keep_crlf_everywhere_including_the_new_line(tmp_path):
    data = agent_example().replace(b"\n", b"\r\n")
    edit = apply_settings(data, OPT_IN, PATH)
    assert edit.data.count(b"\n") == edit.data.count(b"\r\n")
    assert b"\r\nrun_jobs_as_agent_user = true\r\n" in edit.data
    assert len(edit.data) == len(data) - 2  # only "# " went away
    assert agent_loads(edit.data, tmp_path).os.run_jobs_as_agent_user is True


def test_a_bom_is_removed_with_a_warning_even_when_no_key_changes(tmp_path):
    clean = apply_settings(agent_example(), OPT_IN, PATH).data
    edit = apply_settings(b"\xef\xbb\xbf" + clean, OPT_IN, PATH)
    assert edit.changed and edit.data == clean
    assert len(edit.warnings) == 1 and "byte order mark" in edit.warnings[0]
    with pytest.raises(Exception, match="Invalid statement"):
        agent_loads(b"\xef\xbb\xbf" + clean, tmp_path)  # why it matters: the agent refuses it
    assert agent_loads(edit.data, tmp_path).os.run_jobs_as_agent_user is True


def test_utf16_is_rewritten_as_utf8(tmp_path):
    text = MINIMAL.decode()
    edit = apply_settings(text.encode("utf-16"), OPT_IN, PATH)
    assert edit.data.startswith(b"[worker]\n") and "UTF-16" in edit.warnings[0]
    assert agent_loads(edit.data, tmp_path).os.run_jobs_as_agent_user is True


def test_invalid_utf8_is_refused():
    with pytest.raises(WorkerTomlError, match="not UTF-8"):
        apply_settings(b"[os]\nwindows_job_user = \"\xff\"\n", OPT_IN, PATH)


def test_existing_value_changes_in_place_keeping_indent_and_comment():
    data = b'[os]\n  run_jobs_as_agent_user = false   # set by hand\nshutdown_on_stop = true\n'
    edit = apply_settings(data, OPT_IN[:1], PATH)
    assert edit.data == b'[os]\n  run_jobs_as_agent_user = true   # set by hand\nshutdown_on_stop = true\n'
    assert edit.previous == {"os": {"run_jobs_as_agent_user": False}}


def test_the_last_commented_example_is_the_one_uncommented():
    data = (
        b"[worker]\n# The following is an example:\n#\n# farm_id = \"farm-aabbccddeeff11223344556677889900\"\n#\n"
        b"# Uncomment the line below:\n#\n# farm_id = \"REPLACE-WITH-WORKER-FARM-ID\"\n\n[aws]\n"
    )
    farm = "farm-0123456789abcdef0123456789abcdef"
    edit = apply_settings(data, [Setting("worker", "farm_id", farm)], PATH)
    assert changed_lines(data.decode(), edit.text) == [
        '-# farm_id = "REPLACE-WITH-WORKER-FARM-ID"\n',
        f'+farm_id = "{farm}"\n',
    ]


def test_missing_key_goes_at_the_end_of_its_table_before_the_next_header():
    data = b"[worker]\n\n[os]\nshutdown_on_stop = true\n# the last comment of [os]\n\n[capabilities]\n"
    edit = apply_settings(data, OPT_IN[:1], PATH)
    assert edit.text == (
        "[worker]\n\n[os]\nshutdown_on_stop = true\n# the last comment of [os]\nrun_jobs_as_agent_user = true\n\n[capabilities]\n"
    )


def test_missing_table_is_added_and_the_agent_reads_it(tmp_path):
    data = b"[worker]\n[aws]\n[logging]\n[capabilities.amounts]\n[capabilities.attributes]\n"
    edit = apply_settings(data, OPT_IN, PATH)
    assert edit.text.startswith(data.decode())
    assert agent_loads(edit.data, tmp_path).os.run_jobs_as_agent_user is True


def test_absent_comments_the_assignment_out_and_leaves_every_other_byte():
    data = b'[os]\nwindows_job_user = "render-job"  # installer\nshutdown_on_stop = true\n'
    edit = apply_settings(data, [Setting("os", "windows_job_user", state=ABSENT)], PATH)
    assert edit.data == b'[os]\n# windows_job_user = "render-job"  # installer\nshutdown_on_stop = true\n'
    assert edit.previous == {"os": {"windows_job_user": "render-job"}}
    assert apply_settings(edit.data, [Setting("os", "windows_job_user", state=ABSENT)], PATH).changed is False


def test_absent_for_a_multiline_value_comments_every_line():
    data = b'[os]\nwindows_job_user = """\nrender"""\nshutdown_on_stop = true\n'
    edit = apply_settings(data, [Setting("os", "windows_job_user", state=ABSENT)], PATH)
    assert tomllib.loads(edit.text) == {"os": {"shutdown_on_stop": True}}
    assert '# windows_job_user = """\n# render"""\n' in edit.text


def test_dotted_keys_at_the_top_level_are_edited_where_they_are(tmp_path):
    data = MINIMAL.replace(b"[os]\n", b"") + b""
    data = b"os.run_jobs_as_agent_user = false\nos.windows_job_user = \"job\"\n" + data
    edit = apply_settings(data, OPT_IN, PATH)
    loaded = tomllib.loads(edit.text)
    assert loaded["os"] == {"run_jobs_as_agent_user": True}
    assert edit.text.startswith("os.run_jobs_as_agent_user = true\n")
    assert "# os.windows_job_user = \"job\"" in edit.text
    assert agent_loads(edit.data, tmp_path).os.windows_job_user is None


def test_inline_tables_are_edited_inside_the_braces(tmp_path):
    data = MINIMAL.replace(b"[os]\n", b"").replace(b"[worker]\n", b'os = { run_jobs_as_agent_user = false, windows_job_user = "job" }\n[worker]\n')
    edit = apply_settings(data, OPT_IN, PATH)
    loaded = agent_loads(edit.data, tmp_path)
    assert loaded.os.run_jobs_as_agent_user is True and loaded.os.windows_job_user is None
    assert edit.text.startswith('os = { run_jobs_as_agent_user = true }  # windows_job_user = "job" (removed)\n')


def test_a_table_split_by_another_is_edited_in_its_own_part():
    data = b"[os]\nshutdown_on_stop = true\n\n[aws]\n\n[os.extra]\nx = 1\n"
    edit = apply_settings(data, OPT_IN[:1], PATH)
    assert edit.text == "[os]\nshutdown_on_stop = true\nrun_jobs_as_agent_user = true\n\n[aws]\n\n[os.extra]\nx = 1\n"


def test_sub_tables_and_list_values():
    data = agent_example()
    settings = [
        Setting("capabilities.amounts", "amount.slots", 20),
        Setting("capabilities.attributes", "attr.groups", ["maya", "nuke"]),
    ]
    loaded = tomllib.loads(apply_settings(data, settings, PATH).text)
    assert loaded["capabilities"] == {"amounts": {"amount.slots": 20}, "attributes": {"attr.groups": ["maya", "nuke"]}}


def test_invalid_toml_is_refused_with_line_and_column():
    with pytest.raises(WorkerTomlError, match=r"not valid TOML at line 3, column \d+"):
        apply_settings(b"[worker]\n[os]\nrun_jobs_as_agent_user = tru\n", OPT_IN, PATH)


def test_a_new_file_when_there_is_none():
    edit = apply_settings(None, OPT_IN[:1], PATH)
    assert edit.changed and edit.text == "[os]\nrun_jobs_as_agent_user = true\n"


def test_a_key_under_the_wrong_table_is_a_validation_error_and_the_agent_really_ignores_it(tmp_path):
    data = MINIMAL.replace(b"[worker]\n", b"[worker]\nrun_jobs_as_agent_user = true\n")
    verdict = validate(data.decode(), PATH)
    assert verdict.errors == ["run_jobs_as_agent_user is in [worker], where the agent ignores it; it belongs in [os]"]
    assert agent_loads(data, tmp_path).os.run_jobs_as_agent_user is None  # ground truth
    assert check_settings([Setting("worker", "run_jobs_as_agent_user", True)]) == [
        "[worker] run_jobs_as_agent_user: the agent reads run_jobs_as_agent_user only from [os] and ignores it in [worker]"
    ]


def test_keys_whose_table_moved_between_releases_only_warn():
    text = MINIMAL.decode().replace("[os]\n", "[os]\nhost_metrics_logging = true\n")
    verdict = validate(text, PATH)
    assert verdict.errors == []
    assert verdict.warnings and "host_metrics_logging is in [os]" in verdict.warnings[0]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (Setting("os", "run_jobs_as_agent_user", "true"), "takes a boolean"),
        (Setting("os", "shutdown_on_stop", 1), "takes a boolean"),
        (Setting("os", "windows_job_user", True), "takes a string, not a boolean"),
        (Setting("worker", "farm_id", "farm-123"), "does not match regex"),
        (Setting("logging", "host_metrics_logging_interval_seconds", "10"), "takes a number"),
    ],
)
def test_values_of_the_wrong_type_for_known_keys_are_refused(setting, message):
    (error,) = check_settings([setting])
    assert message in error


def test_validation_refuses_what_the_agent_refuses(tmp_path):
    data = MINIMAL.replace(b"[os]\n", b"[os]\nimpersonation = false\n")
    errors = validate(data.decode(), PATH).errors
    removed = "The 'impersonation' option has been removed. Please use 'run_jobs_as_agent_user' instead."
    assert errors == [f"the agent would refuse {PATH}: os -> __root__: {removed}"]
    with pytest.raises(Exception, match="impersonation' option has been removed"):
        agent_loads(data, tmp_path)


# ---------------------------------------------------------------------------------------------
# A misplaced opt-in is moved to [os], not refused after the role has changed the host.


def installer_example() -> bytes:
    """worker.toml of the collection's installer example state (always in the source tree)."""
    import yaml

    state = yaml.safe_load((simworker.EXAMPLES / "installer-default.yml").read_text(encoding="utf-8"))
    return state["files"][simworker.WORKER_TOML]["text"].encode()


def misplace(data: bytes, where: str, line: str = "run_jobs_as_agent_user = true") -> bytes:
    """``line`` where an operator might have put it: under a header, before every table, or at the end."""
    text = data.decode()
    if where == "(top level)":
        return f"{line}\n{text}".encode()
    if where == "end":
        return f"{text.rstrip()}\n{line}\n".encode()
    header = f"[{where}]\n"
    assert header in text
    return text.replace(header, f"{header}{line}\n", 1).encode()


MISPLACED = {
    "worker": "worker",
    "aws": "aws",
    "logging": "logging",
    "(top level)": "(top level)",
    "end": "capabilities.attributes",  # the last table of both examples
    "capabilities.amounts": "capabilities.amounts",
}


@pytest.mark.parametrize("where", sorted(MISPLACED))
@pytest.mark.parametrize("example", ["installer", "0.33.6"])
def test_a_misplaced_opt_in_is_commented_out_and_set_in_os(where, example, shared, tmp_path):
    base = installer_example() if example == "installer" else shared("fixtures", "worker.toml.example-0.33.6").read_bytes()
    data = misplace(base, where)
    lands_in = MISPLACED[where]
    # ground truth first: the agent ignores the key there, or refuses a capability table holding it
    if lands_in.startswith("capabilities."):
        with pytest.raises(Exception, match="Value is not a valid Capability name: run_jobs_as_agent_user"):
            agent_loads(data, tmp_path)
    else:
        assert agent_loads(data, tmp_path).os.run_jobs_as_agent_user is None

    edit = apply_settings(data, OPT_IN, PATH)
    assert changed_lines(data.decode(), edit.text) == [
        "-run_jobs_as_agent_user = true\n",
        "+# run_jobs_as_agent_user = true\n",
        "-# run_jobs_as_agent_user = true\n",
        "+run_jobs_as_agent_user = true\n",
    ] or sorted(changed_lines(data.decode(), edit.text)) == sorted(
        ["-run_jobs_as_agent_user = true\n", "+# run_jobs_as_agent_user = true\n", "-# run_jobs_as_agent_user = true\n", "+run_jobs_as_agent_user = true\n"]
    )
    (warning,) = [w for w in edit.warnings if "run_jobs_as_agent_user" in w]
    assert f"was in [{lands_in}]" in warning and "set in [os]" in warning
    assert edit.previous[lands_in] == {"run_jobs_as_agent_user": True}
    assert validate(edit.text, PATH).errors == []
    assert agent_loads(edit.data, tmp_path).os.run_jobs_as_agent_user is True
    ids = {"DEADLINE_WORKER_FARM_ID": "farm-" + "0" * 32, "DEADLINE_WORKER_FLEET_ID": "fleet-" + "0" * 32}
    settings = agent_truth.worker_settings(edit.data, tmp_path, ids)  # 0.33.6's example has no ids
    assert settings.run_jobs_as_agent_user is True and settings.windows_job_user is None
    assert apply_settings(edit.data, OPT_IN, PATH).changed is False


def test_a_misplaced_copy_is_removed_even_when_os_already_opts_in(tmp_path):
    data = misplace(misplace(installer_example(), "os"), "worker", "run_jobs_as_agent_user = false")
    edit = apply_settings(data, OPT_IN, PATH)
    assert changed_lines(data.decode(), edit.text) == ["-run_jobs_as_agent_user = false\n", "+# run_jobs_as_agent_user = false\n"]
    assert agent_loads(edit.data, tmp_path).os.run_jobs_as_agent_user is True


@pytest.mark.parametrize(
    ("stray", "commented"),
    [
        ("logging.run_jobs_as_agent_user = true\nlogging.verbose = true\n", "# logging.run_jobs_as_agent_user = true\n"),
        ('logging = { run_jobs_as_agent_user = true, verbose = true }\n', "# run_jobs_as_agent_user = true (removed)"),
    ],
)
def test_dotted_and_inline_strays_are_commented_out(stray, commented, tmp_path):
    data = stray.encode() + MINIMAL.replace(b"[logging]\n", b"")
    assert agent_loads(data, tmp_path).os.run_jobs_as_agent_user is None
    edit = apply_settings(data, OPT_IN, PATH)
    assert commented in edit.text
    assert validate(edit.text, PATH).errors == []
    loaded = agent_loads(edit.data, tmp_path)
    assert loaded.os.run_jobs_as_agent_user is True
    assert loaded.logging.verbose is True  # the rest of the table stays


def test_absent_also_comments_out_misplaced_copies_and_unstable_keys_are_left():
    data = misplace(misplace(MINIMAL, "worker", 'windows_job_user = "job"'), "os", "host_metrics_logging = true")
    edit = apply_settings(data, [Setting("os", "windows_job_user", state=ABSENT), Setting("logging", "host_metrics_logging", True)], PATH)
    assert '# windows_job_user = "job"' in edit.text
    assert any("was in [worker]" in w and "commented out there" in w for w in edit.warnings)
    # host_metrics_logging's table moved between releases: a copy in [os] is not touched
    assert "[os]\nhost_metrics_logging = true\n" in edit.text
    assert tomllib.loads(edit.text)["os"] == {"host_metrics_logging": True}


def test_a_misplaced_key_the_settings_do_not_touch_only_warns_when_it_was_there_before(tmp_path):
    # farm_id in [aws]: the agent ignores it before and after the role's edit, which does not touch it
    data = misplace(installer_example(), "aws", f'farm_id = "farm-{"1" * 32}"')
    edit = apply_settings(data, OPT_IN, PATH)
    verdict = validate(edit.text, PATH, edit.original_text)
    assert verdict.errors == []
    assert verdict.warnings == [
        "farm_id is in [aws], where the agent ignores it; it belongs in [worker] (it was there before this change, which leaves it as it was)"
    ]
    assert agent_loads(edit.data, tmp_path).worker.farm_id == "farm-0123456789abcdef0123456789abcdef"  # ground truth: [aws]'s is ignored
    # without the file as it was, or when the change itself puts it there, it is refused
    assert validate(edit.text, PATH).errors
    assert validate(edit.text, PATH, installer_example().decode()).errors


@pytest.mark.parametrize("data", [b"[os]\rshutdown_on_stop = true\r", b"[worker]\n[os]\rshutdown_on_stop = true\n"])
def test_lone_carriage_returns_are_refused_naming_the_line_endings(data):
    with pytest.raises(WorkerTomlError) as raised:
        apply_settings(data, [Setting("os", "run_jobs_as_agent_user", True)], "worker.toml")
    assert "line 1, column" not in str(raised.value) and "which TOML does not allow" in str(raised.value)
    assert ("CR-only line endings" in str(raised.value)) is (b"\n" not in data)
    assert raised.value.fix == "save worker.toml with CRLF (Windows) or LF line endings"


OPT_IN_EDIT = [
    Setting("os", "run_jobs_as_agent_user", True),
    Setting("os", "windows_job_user", None, "absent"),
    Setting("os", "impersonation", None, "absent"),
]


@pytest.mark.parametrize(
    ("commented", "expected"),
    [
        # the operator's note stays, with the line it speaks of; the key goes on its own line after it
        (
            "[os]\n#run_jobs_as_agent_user=false  # tried, reverted\nshutdown_on_stop = true\n",
            "[os]\n#run_jobs_as_agent_user=false  # tried, reverted\nrun_jobs_as_agent_user = true\nshutdown_on_stop = true\n",
        ),
        ("[os]\n# run_jobs_as_agent_user = false # tried\n", "[os]\n# run_jobs_as_agent_user = false # tried\nrun_jobs_as_agent_user = true\n"),
        # the agent's own example, without a note, is uncommented in place (as its own editor does)
        ("[os]\n# run_jobs_as_agent_user = true\nshutdown_on_stop = true\n", "[os]\nrun_jobs_as_agent_user = true\nshutdown_on_stop = true\n"),
    ],
)
def test_a_commented_opt_in_with_a_note_keeps_the_note(commented, expected):
    edit = apply_settings(commented.encode(), OPT_IN_EDIT, "worker.toml")
    assert edit.text == expected
    assert tomllib.loads(edit.text)["os"]["run_jobs_as_agent_user"] is True


@pytest.mark.parametrize(
    ("inline", "expected"),
    [
        ("os = { shutdown_on_stop = true }", "os = { shutdown_on_stop = true, run_jobs_as_agent_user = true }"),
        ('os = { run_jobs_as_agent_user = false, windows_job_user = "x" }', 'os = { run_jobs_as_agent_user = true }  # windows_job_user = "x" (removed)'),
        ("os = {shutdown_on_stop=true,retain_session_dir=false}", "os = {shutdown_on_stop=true,retain_session_dir=false,run_jobs_as_agent_user=true}"),
        ("os = { run_jobs_as_agent_user = true }  # set by hand", "os = { run_jobs_as_agent_user = true }  # set by hand"),
    ],
)
def test_an_inline_os_table_keeps_its_spacing(inline, expected):
    rest = "[worker]\n[aws]\n[logging]\n[capabilities.amounts]\n[capabilities.attributes]\n"
    edit = apply_settings(f"{inline}\n{rest}".encode(), OPT_IN_EDIT, "worker.toml")
    assert edit.text == f"{expected}\n{rest}"
    assert edit.changed is (inline != expected)
