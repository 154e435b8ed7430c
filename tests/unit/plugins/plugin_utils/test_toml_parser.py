# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""worker.toml is parsed as the agent parses it on every controller Python: tomllib from 3.11, tomli
on 3.10 (ansible-core 2.16 and 2.17 controllers, where the agent itself falls back to tomli too), and
a failure naming the missing package when neither is there."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import config_file

# Real shapes: the installer's tables with the opt-in, and three mistakes operators make by hand.
DOCUMENTS = [
    '[worker]\nfarm_id = "farm-1234567890abcdef1234567890abcdef"\n\n[os]\nrun_jobs_as_agent_user = true\nshutdown_on_stop = false\n',
    "[os]\nrun_jobs_as_agent_user = True\n",  # Python's spelling: TOML booleans are lower case
    "[os]\nrun_jobs_as_agent_user = true\n[os]\nshutdown_on_stop = true\n",  # the table twice
    '[worker]\nfarm_id = "farm-1234\n',  # an unterminated string
]


def _config_file_without(monkeypatch, *missing: str):
    """A fresh copy of config_file, imported as on a controller where the modules named are not installed."""
    for name in missing:
        monkeypatch.setitem(sys.modules, name, None)  # `import name` now raises ImportError
    spec = importlib.util.spec_from_file_location("cmf_config_file_copy", Path(config_file.__file__))
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up while they are made
    spec.loader.exec_module(module)
    return module


def test_without_tomllib_the_parser_is_tomli(monkeypatch):
    tomli = pytest.importorskip("tomli", reason="tomli is installed on Python 3.10 only (requirements.txt), and in .venv for this test")
    python_3_10 = _config_file_without(monkeypatch, "tomllib")
    assert python_3_10.tomllib is tomli
    assert python_3_10.TOMLLIB_IMPORT_ERROR is None


@pytest.mark.parametrize("text", DOCUMENTS)
def test_tomli_reads_worker_toml_as_tomllib_does(monkeypatch, text):
    pytest.importorskip("tomli", reason="tomli is installed on Python 3.10 only (requirements.txt), and in .venv for this test")
    if sys.version_info < (3, 11):
        pytest.skip("Python 3.10 has no tomllib to compare tomli with; config_file uses tomli here (the test above)")
    python_3_10 = _config_file_without(monkeypatch, "tomllib")
    document, error = python_3_10.parse_toml(text)
    expected_document, expected_error = config_file.parse_toml(text)
    assert document == expected_document
    assert _fields(error) == _fields(expected_error)
    if error is not None:
        assert error.line is not None and error.column is not None, error  # where the agent stops, for the finding


def _fields(error) -> tuple | None:
    # the copy's ParseError is another class than the module's: compare what they hold
    return None if error is None else (error.message, error.line, error.column)


def test_without_any_toml_parser_reading_worker_toml_fails_naming_the_package(monkeypatch):
    bare = _config_file_without(monkeypatch, "tomllib", "tomli")
    assert bare.tomllib is None
    with pytest.raises(bare.TomlParserMissing, match=r"needs the Python package tomli on the controller .*pip install -r requirements\.txt"):
        bare.parse_toml(DOCUMENTS[0])


def test_the_running_python_has_a_toml_parser():
    assert config_file.TOMLLIB_IMPORT_ERROR is None
    assert config_file.tomllib.__name__ == ("tomllib" if sys.version_info >= (3, 11) else "tomli")
