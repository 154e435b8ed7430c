# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Editing worker.toml the way an operator would by hand, with tomlkit.

Everything a change does not touch stays byte for byte: comments, blank lines, key order,
quoting, other tables and the line endings. A key that exists changes in place; a key the file
only shows as a commented-out example (``# run_jobs_as_agent_user = true``, as the agent's
example file does) takes that line's place; otherwise it goes at the end of its table's own
lines. Removing a key comments its line out, so the operator still sees what was there.

A key whose table never moved between agent releases, asked for in that table, is also commented
out wherever else the file assigns it (the agent ignores it there, or refuses to start when it is in
a capability table): setting [os] run_jobs_as_agent_user moves a copy from [worker] or from the
end of the file (the last table: [capabilities.attributes] in the agent's example) to [os].

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

try:
    import tomlkit
    from tomlkit.container import Container, OutOfOrderTableProxy
    from tomlkit.exceptions import TOMLKitError
    from tomlkit.items import Comment, InlineTable, Item, Key, Null, Table, Trivia
except ImportError as error:  # the controller lacks the collection's requirements.txt
    TOMLKIT_IMPORT_ERROR: ImportError | None = error
else:
    TOMLKIT_IMPORT_ERROR = None

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import config_file as agent_config

PRESENT = "present"
ABSENT = "absent"
_MISSING = object()


class WorkerTomlError(Exception):
    """The edit cannot be made; the message is the task's ``msg`` and nothing is written. ``fix`` says
    what to change by hand, where the message alone does not."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


LINE_ENDINGS_FIX = "save worker.toml with CRLF (Windows) or LF line endings"


@dataclass(frozen=True)
class Setting:
    table: str  # a table name, dotted for a sub-table ("capabilities.amounts")
    key: str
    value: Any = None
    state: str = PRESENT

    @property
    def name(self) -> str:
        return f"[{self.table}] {self.key}"


@dataclass
class Edit:
    """The outcome of applying settings to a file's bytes."""

    data: bytes  # the new file, UTF-8 without BOM
    text: str
    original_text: str
    changed: bool
    previous: dict[str, dict[str, Any]] = field(default_factory=dict)  # {table: {key: old value or None}}
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# bytes and line endings


def _newline_of(text: str) -> str:
    """CRLF when every line ends so; a file that mixes them keeps LF for what we add."""
    return "\r\n" if "\r\n" in text and text.count("\n") == text.count("\r\n") else "\n"


def decode(data: bytes, path: str) -> tuple[str, list[str]]:
    """The text of ``data``; a BOM or UTF-16 is removed and said in the warnings (either stops the agent)."""
    decoded = agent_config.decode_config(data, path)
    if decoded.text is None:
        raise WorkerTomlError(f"{path} is not UTF-8 text ({decoded.agent_error}); nothing was changed")
    warnings = []
    if decoded.encoding == "utf-8-bom":
        warnings.append(
            f"{path} started with a UTF-8 byte order mark, which stops the worker agent "
            "(\"is not valid TOML: Invalid statement (at line 1, column 1)\"); it is written without one"
        )
    elif decoded.encoding == "utf-16":
        warnings.append(f"{path} was UTF-16, which stops the worker agent (it reads strict UTF-8); it is written as UTF-8")
    return decoded.text, warnings


# ---------------------------------------------------------------------------------------------
# finding things in a tomlkit document


def _lookup_table(document: tomlkit.TOMLDocument, dotted: str | tuple[str, ...]) -> Any:
    """The table at ``dotted`` (a Table, an out-of-order proxy or an inline table), or None.

    ``dotted`` is a table name ("capabilities.amounts") or the parts of its path (keys may hold dots)."""
    node: Any = document
    for part in dotted.split(".") if isinstance(dotted, str) else dotted:
        if not hasattr(node, "get"):
            return None
        node = node.get(part)
        if node is None:
            return None
    if isinstance(node, (Table, InlineTable, OutOfOrderTableProxy)):
        return node
    name = dotted if isinstance(dotted, str) else ".".join(dotted)
    raise WorkerTomlError(f"[{name}] is not a table in this file but a {type(node).__name__.lower()} value")


def _parts(table: Any) -> list[Table]:
    """The header tables a logical table is written in (a table may be split by others)."""
    if isinstance(table, OutOfOrderTableProxy):
        return [t for t in table._tables if isinstance(t, Table)]
    return [table] if isinstance(table, Table) else []


def _comment_pattern(key: str) -> re.Pattern[str]:
    quoted = re.escape(key)
    return re.compile(rf'^#+\s*(?:{quoted}|"{quoted}"|\'{quoted}\')\s*=')


def _commented_example(table: Any, key: str) -> tuple[Container, int] | None:
    """The last commented-out assignment of ``key`` among the table's own lines."""
    pattern = _comment_pattern(key)
    found = None
    for part in _parts(table):
        body = part.value.body
        for index, (item_key, item) in enumerate(body):
            if item_key is None and isinstance(item, Comment) and pattern.match(item.trivia.comment.strip()):
                found = (part.value, index)
    return found


def _has_note(comment: str) -> bool:
    """Whether a commented-out assignment carries a note of its own after the value (a second ``#``),
    or is not a plain assignment at all: then it is the operator's text, kept as it is."""
    try:
        document = tomlkit.parse(comment.strip().lstrip("#").strip())
    except TOMLKitError:
        return True
    return any(key is not None and item.trivia.comment for key, item in document.body)


def _assignment_position(table: Any, key: str) -> tuple[Table, int] | None:
    for part in _parts(table):
        for index, (item_key, _item) in enumerate(part.value.body):
            if item_key is not None and not item_key.is_dotted() and item_key.key == key:
                return part, index
    return None


def _plain(value: Any) -> Any:
    return value.unwrap() if hasattr(value, "unwrap") else value


def _same(a: Any, b: Any) -> bool:
    """TOML equality: a bool is not an int, an int is not a float."""
    a, b = _plain(a), _plain(b)
    return type(a) is type(b) and a == b


# ---------------------------------------------------------------------------------------------
# the edits


def _set(document: tomlkit.TOMLDocument, setting: Setting, newline: str) -> bool:
    table = _lookup_table(document, setting.table)
    if table is None:
        new_table = tomlkit.table()
        new_table.add(setting.key, setting.value)
        parent_path, _dot, name = setting.table.rpartition(".")
        parent = _lookup_table(document, parent_path) if parent_path else document
        if parent is None:
            document.add(tomlkit.key(setting.table.split(".")), new_table)
        else:
            parent.append(name, new_table)
        return True
    current = table.get(setting.key, _MISSING) if hasattr(table, "get") else _MISSING
    if current is not _MISSING:
        if _same(current, setting.value):
            return False
        table[setting.key] = setting.value  # tomlkit keeps the line's indent and trailing comment
        return True
    example = _commented_example(table, setting.key)
    if example is not None:
        container, index = example
        comment = container.body[index][1]
        item = tomlkit.item(setting.value)
        item.trivia.indent = comment.trivia.indent
        item.trivia.trail = comment.trivia.trail or newline
        if _has_note(comment.trivia.comment):
            # "#run_jobs_as_agent_user=false  # tried, reverted": the operator's note stays where it
            # was, with the line it speaks of; the key goes on its own line right after it.
            if index + 1 < len(container.body):
                container._insert_at(index + 1, setting.key, item)
            else:
                container.append(setting.key, item)
        else:
            _uncomment_at(container, index, setting.key, item)
        return True
    parts = _parts(table)
    if parts:  # a table written in several places grows in the part with its own [header]
        target = next((part for part in parts if not part.is_super_table()), parts[0])
        target.append(setting.key, setting.value)
    else:
        table[setting.key] = setting.value  # an inline table
    return True


def _uncomment_at(container: Container, index: int, key: str, item: Item) -> None:
    """The key and value take the place of the commented-out line at body[index]."""
    container.body[index] = (None, Null())
    container._insert_at(index, key, item)


def _comment_out_at(container: Container, index: int, comment: Comment) -> None:
    """The assignment at body[index] becomes ``comment``, in the same place."""
    container._remove_at(index)
    container.body[index] = (None, comment)


def _line_of(key: Key, item: Item) -> str:
    return f"{key.as_string()}{key.sep}{item.as_string()}"


def _unset(document: tomlkit.TOMLDocument, setting: Setting, newline: str) -> bool:
    return _comment_out(document, tuple(setting.table.split(".")), setting.key, newline)


def _comment_out(document: tomlkit.TOMLDocument, path: tuple[str, ...], key: str, newline: str) -> bool:
    """Comment out the assignment of ``key`` in the table at ``path`` (() is the top level)."""
    table = _lookup_table(document, path) if path else document
    if table is None or key not in table:
        return False
    if not path:
        index = next(i for i, (k, _item) in enumerate(document.body) if k is not None and not k.is_dotted() and k.key == key)
        position: tuple[Any, int] | None = (None, index)
    else:
        position = _assignment_position(table, key)
    if position is None:
        # An inline table has no line per key: the old assignment goes in the line's comment.
        old = table.item(key)  # the item (table[key] gives a plain bool for a boolean)
        del table[key]
        note = f"# {key} = {old.as_string().strip()} (removed)"
        owner = document.item(path[0]) if len(path) == 1 else table
        trivia = owner.trivia
        trivia.comment = f"{trivia.comment}; {note[2:]}" if trivia.comment else note
        trivia.comment_ws = trivia.comment_ws or "  "
        return True
    part, index = position
    container = document if part is None else part.value
    key_item, item = container.body[index]
    # In dotted keys (os.windows_job_user = ...) the table's name is part of the line.
    prefix = f"{'.'.join(path)}." if part is not None and part.is_super_table() else ""
    text = prefix + _line_of(key_item, item) + item.trivia.comment_ws + item.trivia.comment
    lines = text.splitlines() or [""]
    commented = (newline + item.trivia.indent).join(f"# {line}" for line in lines)
    replacement = Comment(Trivia(indent=item.trivia.indent, comment_ws="", comment=commented, trail=item.trivia.trail or newline))
    _comment_out_at(container, index, replacement)
    return True


# ---------------------------------------------------------------------------------------------
# inline tables (os = { run_jobs_as_agent_user = false }) keep the spacing they were written with


def _inline_style(text: str) -> tuple[str, str, str]:
    """(padding inside the braces, key/value separator, item separator) of an inline table's text."""
    inner = text.strip()[1:-1]
    if not inner.strip():
        return " ", " = ", ", "
    return (" " if inner[:1].isspace() else "", " = " if re.search(r"\s=\s", inner) else "=", ", " if re.search(r",\s", inner) or "," not in inner else ",")


def _inline_styles(document: tomlkit.TOMLDocument, settings: list[Setting]) -> dict[str, tuple[str, tuple[str, str, str]]]:
    """The inline tables the settings edit: their text before the edit, and its style."""
    styles = {}
    for setting in settings:
        try:
            table = _lookup_table(document, setting.table)
        except WorkerTomlError:
            continue
        if isinstance(table, InlineTable) and setting.table not in styles:
            styles[setting.table] = (table.as_string(), _inline_style(table.as_string()))
    return styles


def _restyle_inline(document: tomlkit.TOMLDocument, dotted: str, before: tuple[str, tuple[str, str, str]]) -> None:
    """Write the inline table at ``dotted`` again in the style it had, when the edit changed it:
    tomlkit writes what it adds without spaces and leaves a removed item's spaces behind."""
    parent_path, _dot, name = dotted.rpartition(".")
    owner = _lookup_table(document, parent_path) if parent_path else document
    old = owner.item(name)
    original, (pad, equals, separator) = before
    if not isinstance(old, InlineTable) or old.as_string() == original:
        return
    entries = [f"{key.as_string().strip()}{equals}{item.as_string().strip()}" for key, item in old.value.body if key is not None]
    text = "{" + pad + separator.join(entries) + pad + "}" if entries else "{}"
    if text == old.as_string().strip():
        return
    new = tomlkit.parse(f"x = {text}")["x"]
    for attribute in ("indent", "comment_ws", "comment", "trail"):
        setattr(new.trivia, attribute, getattr(old.trivia, attribute))
    owner[name] = new


def _old_value(document: tomlkit.TOMLDocument, setting: Setting) -> Any:
    try:
        table = _lookup_table(document, setting.table)
    except WorkerTomlError:
        return None
    if table is None or setting.key not in table:
        return None
    return _plain(table[setting.key])


def _stray_paths(document: tomlkit.TOMLDocument, key: str, home: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every table other than ``home`` (and the top level) that assigns ``key`` a value."""
    found: list[tuple[str, ...]] = []

    def walk(table: dict, where: tuple[str, ...]) -> None:
        if where != home and key in table and not isinstance(table[key], dict):
            found.append(where)
        for name, value in table.items():
            if isinstance(value, dict):
                walk(value, (*where, name))

    walk(document.unwrap(), ())
    return found


def _table_name(path: tuple[str, ...]) -> str:
    return ".".join(path) if path else "(top level)"


def _remove_strays(document: tomlkit.TOMLDocument, setting: Setting, previous: dict, warnings: list[str]) -> None:
    """Comment out assignments of a stable key outside its table, where the agent ignores them (or,
    in a capability table, refuses to start): the setting asked for in its own table is the one kept."""
    known = agent_config.known_key(setting.table, setting.key)
    if known is None or not known.table_is_stable:
        return
    for path in _stray_paths(document, setting.key, tuple(setting.table.split("."))):
        old = _plain(_lookup_table(document, path)[setting.key]) if path else _plain(document[setting.key])
        _comment_out(document, path, setting.key, "\n")
        previous.setdefault(_table_name(path), {})[setting.key] = old
        effect = agent_config.stray_key_effect(path)
        done = f"it is commented out there and set in [{setting.table}]" if setting.state == PRESENT else "it is commented out there"
        warnings.append(f"{setting.key} was in [{_table_name(path)}] of the file, where the agent {effect}; {done}")


def parse_error_message(text: str, path: str) -> str | None:
    _document, error = agent_config.parse_toml(text)
    if error is None:
        return None
    endings = agent_config.lone_carriage_returns(text)
    if endings:
        return f"{path} has {endings}, which TOML does not allow: the agent cannot read it"
    where = f" at line {error.line}, column {error.column}" if error.line else ""
    return f"{path} is not valid TOML{where}: {error.message}"


def apply_settings(data: bytes | None, settings: list[Setting], path: str) -> Edit:
    """Apply ``settings`` to the file's bytes (None: a new file). Raises WorkerTomlError."""
    original_text, warnings = ("", []) if data is None else decode(data, path)
    problem = parse_error_message(original_text, path)
    if problem:
        fix = LINE_ENDINGS_FIX if agent_config.lone_carriage_returns(original_text) else None
        raise WorkerTomlError(f"{problem}; nothing was changed", fix)
    newline = _newline_of(original_text)
    # tomlkit is given LF only, and CRLF is restored after: what it adds then matches the file.
    working = original_text.replace("\r\n", "\n") if newline == "\r\n" else original_text
    try:
        document = tomlkit.parse(working)
    except TOMLKitError as error:
        raise WorkerTomlError(f"{path} cannot be edited: {error}; nothing was changed") from None
    previous: dict[str, dict[str, Any]] = {}
    inline_styles = _inline_styles(document, settings)
    for setting in settings:
        previous.setdefault(setting.table, {})[setting.key] = _old_value(document, setting)
        _remove_strays(document, setting, previous, warnings)
        if setting.state == PRESENT:
            _set(document, setting, "\n")
        else:
            _unset(document, setting, "\n")
    for dotted, before in inline_styles.items():
        _restyle_inline(document, dotted, before)
    text = document.as_string()
    if newline == "\r\n":
        text = text.replace("\n", "\r\n")
    new_data = text.encode("utf-8")
    return Edit(
        data=new_data,
        text=text,
        original_text=original_text,
        changed=data != new_data,
        previous=previous,
        warnings=warnings,
    )


# ---------------------------------------------------------------------------------------------
# validation against the agent's schema


@dataclass
class Validation:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_settings(settings: list[Setting]) -> list[str]:
    """Values of the wrong type for keys the agent knows, and known keys asked for in another table."""
    errors = []
    for setting in settings:
        if setting.state != PRESENT:
            continue
        known = agent_config.KNOWN_KEYS.get(setting.key)
        if known is None:
            continue
        if known.table != setting.table:
            if known.table_is_stable:
                errors.append(
                    f"{setting.name}: the agent reads {setting.key} only from [{known.table}] and ignores it in [{setting.table}]"
                )
            continue
        problem = agent_config.write_type_error(known, setting.value)
        if problem:
            errors.append(problem)
    return errors


def validate(text: str, path: str, before: str | None = None) -> Validation:
    """What the agent would say about ``text``: refusals are errors, keys it would ignore are too
    where their table never moved between releases, and warnings where it did.

    With ``before`` (the file as it was), a key that sat in the same wrong table before the change
    only warns: the change leaves it as the agent already reads it, and refusing it then would stop
    a run whose earlier tasks have already changed the host."""
    result = Validation()
    problem = parse_error_message(text, path)
    if problem:
        result.errors.append(problem)
        return result
    document, _error = agent_config.parse_toml(text)
    report = agent_config.check_document(document or {})
    result.errors.extend(f"the agent would refuse {path}: {error}" for error in report.errors)
    already = set(_misplaced(before)) if before is not None else set()
    for key, found_in, belongs_in in report.misplaced:
        message = f"{key} is in [{found_in}], where the agent ignores it; it belongs in [{belongs_in}]"
        if (key, found_in, belongs_in) in already:
            result.warnings.append(message + " (it was there before this change, which leaves it as it was)")
        elif agent_config.KNOWN_KEYS[key].table_is_stable:
            result.errors.append(message)
        else:
            result.warnings.append(message + " (in the agent releases this collection knows)")
    return result


def _misplaced(text: str) -> list[tuple[str, str, str]]:
    document, _error = agent_config.parse_toml(text)
    return agent_config.check_document(document).misplaced if document is not None else []
