# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._action import CmfAction
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import config_file as agent_config
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent.worker_toml import (
    ABSENT,
    PRESENT,
    TOMLKIT_IMPORT_ERROR,
    Setting,
    WorkerTomlError,
    apply_settings,
    check_settings,
    validate,
)
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host import Host, HostOperationError, file_from_reading
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.errors import FILE_CHANGED, FILE_EXISTS

_SETTING_SPEC = {
    "table": {"type": "str", "required": True},
    "key": {"type": "str", "required": True, "no_log": False},
    "value": {"type": "raw"},
    "state": {"type": "str", "default": PRESENT, "choices": [PRESENT, ABSENT]},
}


class ActionModule(CmfAction):
    ARGUMENT_SPEC = {
        "config_path": {"type": "str", "default": agent_config.CONFIG_PATH, "aliases": ["path"]},
        "table": {"type": "str"},
        "key": {"type": "str", "no_log": False},
        "value": {"type": "raw"},
        "state": {"type": "str", "choices": [PRESENT, ABSENT]},
        "settings": {"type": "list", "elements": "dict", "options": _SETTING_SPEC},
        "backup": {"type": "bool", "default": False},
        "validate": {"type": "bool", "default": True},
        "create": {"type": "bool", "default": False},
        "reading": {"type": "dict"},
    }
    MUTUALLY_EXCLUSIVE = [["settings", "key"], ["settings", "table"], ["settings", "value"], ["settings", "state"]]
    REQUIRED_ONE_OF = [["settings", "key"]]
    REQUIRED_TOGETHER = [["table", "key"]]

    def execute(self, host: Host, params: dict, task_vars: dict) -> dict:
        if TOMLKIT_IMPORT_ERROR is not None:
            return {
                "failed": True,
                "msg": f"worker_toml needs the Python package tomlkit on the controller ({TOMLKIT_IMPORT_ERROR}): "
                "pip install -r requirements.txt from the collection",
            }
        path = params["config_path"]
        try:
            settings = _settings_from(params)
        except WorkerTomlError as error:
            return {"failed": True, "msg": str(error)}

        # A reading of the same file (worker_agent_info's) saves the read: the write is still
        # guarded by the hash of exactly those bytes.
        current = file_from_reading(params["reading"], path) or host.read_file(path)
        if not current.exists and not params["create"]:
            return {"failed": True, "msg": f"{path} does not exist; set create: true to create it"}
        try:
            edit = apply_settings(current.data if current.exists else None, settings, path)
        except WorkerTomlError as error:
            return {"failed": True, "msg": str(error)}

        warnings = list(edit.warnings)
        if params["validate"]:
            problems = check_settings(settings)
            verdict = validate(edit.text, path, edit.original_text if current.exists else None)
            problems.extend(verdict.errors)
            warnings.extend(verdict.warnings)
            if problems:
                return {
                    "failed": True,
                    "msg": f"{path} was not changed: " + "; ".join(problems),
                    "previous": edit.previous,
                    "warnings": warnings,
                }

        result: dict = {"changed": edit.changed, "previous": edit.previous, "backup_file": None, "path": path}
        if warnings:
            result["warnings"] = warnings
        if edit.changed and self.diff_mode:
            result["diff"] = {
                "before_header": path if current.exists else f"{path} (absent)",
                "after_header": path,
                "before": edit.original_text,
                "after": edit.text,
            }
        if not edit.changed or self.check_mode:
            return result
        try:
            written = host.write_file(path, edit.data, current.sha256, params["backup"])
        except HostOperationError as error:
            if error.code in (FILE_CHANGED, FILE_EXISTS):
                result.update(
                    failed=True,
                    changed=False,
                    msg=f"worker.toml changed while it was being edited ({error.message}); nothing was written "
                    "and the file is as the other writer left it: run the task again to apply the change on top",
                )
                result.pop("diff", None)
                return result
            raise
        result["backup_file"] = written.get("backup_file")
        # What a successful write left behind (a temporary file it could not delete): the operator's to remove.
        left_behind = [str(w) for w in written.get("warnings") or []]
        if left_behind:
            result["warnings"] = [*result.get("warnings", []), *left_behind]
        return result


def _settings_from(params: dict) -> list[Setting]:
    if params["settings"] is not None:
        entries = params["settings"]
        if not entries:
            raise WorkerTomlError("settings is empty: give at least one {table, key, value, state}")
    else:
        entries = [{"table": params["table"], "key": params["key"], "value": params["value"], "state": params["state"] or PRESENT}]
    settings = []
    for entry in entries:
        setting = Setting(
            table=entry["table"], key=entry["key"], value=_toml_value(entry["value"]), state=entry["state"] or PRESENT
        )
        if not setting.table or not setting.key:
            raise WorkerTomlError("each setting needs a table and a key")
        if setting.state == PRESENT and setting.value is None:
            raise WorkerTomlError(f"{setting.name}: state present needs a value")
        settings.append(setting)
    seen = set()
    for setting in settings:
        if (setting.table, setting.key) in seen:
            raise WorkerTomlError(f"{setting.name} is given twice in settings")
        seen.add((setting.table, setting.key))
    return settings


def _toml_value(value: object) -> object:
    """A plain bool, int, float, string or list of them (Ansible may hand over tagged subclasses)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_toml_value(item) for item in value]
    raise WorkerTomlError(f"value {value!r} is a {type(value).__name__}; worker.toml takes a bool, int, float, string or list")
