# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The contract vectors (tests/contract/vectors/<operation>.yml): loading, placeholders, matching,
and the simulated worker built from a vector's ``host``. tests/windows/ does the same in PowerShell
from tests/windows/vectors.json, the JSON copy of these files.

A case: ``name``, ``why`` (the Windows fact), ``host`` (below), ``parameters``, ``expect`` (a subset
of the result, or ``{error_code: CODE}``), optional ``after`` (files, backups, rights, members,
service) and optional ``windows_skip`` (why a Windows host cannot be built so).

``host``: ``users {name: {enabled, environment}}``, ``groups {name: {members}}`` (local groups),
``domain_groups {name: {members}}`` (need a domain on Windows), ``orphans [name]`` (SIDs of deleted
accounts), ``builtin {English name: {name (localized), members, only}}`` (Administrators always
also holds ``Administrator``, RID 500, and ``connection``, the account the operations run as,
unless ``only``), ``rights {right: [name]}``, ``files {path: {text|base64}}``, ``environment``,
``service {account, state, start_mode, sessions}``.

Placeholders: ``{root}`` (a folder of the test), ``{root_re}`` (the same, as a regex), ``{host}``,
``{service}``, ``{name:x}``, ``{qname:x}`` (DOMAIN\\name), ``{sid:x}``, ``{stamp:N}`` (UTC now + N
seconds as yyyyMMdd-HHmmss). Matchers in ``expect``: a mapping is a subset, a list must contain a
match for each item; ``{$exactly: [...]}``, ``{$regex: ...}``, ``{$type: list}``, and
``$without_keys: [...]`` inside a mapping.
"""

from __future__ import annotations

import base64
import datetime
import fnmatch
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import simworker
import yaml

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.accounts import WELL_KNOWN_GROUPS, service_account_sid

VECTORS = Path(__file__).resolve().parent / "contract" / "vectors"
WINDOWS_VECTORS_JSON = Path(__file__).resolve().parent / "windows" / "vectors.json"

SIM_ROOT = r"C:\cmf-contract"
SIM_HOST = "WORKER-01"
SIM_SERVICE = "DeadlineWorker"
_DOMAIN = "S-1-5-21-3623811015-3361044348-30300820"  # the example states' machine SID
_CORP = "S-1-5-21-1004336348-1177238915-682003330"  # a domain's SID for domain groups
_PLACEHOLDER = re.compile(r"\{(root|root_re|host|service)\}|\{(name|qname|sid|stamp):([^{}]+)\}")


def load_vectors() -> dict[str, dict]:
    """Every vector file, by operation name."""
    return {path.stem: yaml.safe_load(path.read_text(encoding="utf-8")) for path in sorted(VECTORS.glob("*.yml"))}


def windows_json() -> str:
    """The JSON copy the Windows suite reads (powershell-yaml is not built into Windows)."""
    return json.dumps(load_vectors(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


@dataclass
class Names:
    """What a host made of a vector's logical names."""

    root: str
    host: str
    service: str
    names: dict[str, str] = field(default_factory=dict)
    qnames: dict[str, str] = field(default_factory=dict)
    sids: dict[str, str] = field(default_factory=dict)
    now: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc))

    def expand(self, value: Any) -> Any:
        if isinstance(value, str):
            return _PLACEHOLDER.sub(self._one, value)
        if isinstance(value, list):
            return [self.expand(v) for v in value]
        if isinstance(value, dict):
            return {self.expand(k): self.expand(v) for k, v in value.items()}
        return value

    def _one(self, match: re.Match) -> str:
        simple, kind, arg = match.group(1), match.group(2), match.group(3)
        if simple == "root":
            return self.root
        if simple == "root_re":
            return re.escape(self.root)
        if simple == "host":
            return self.host
        if simple == "service":
            return self.service
        if kind == "stamp":
            return (self.now + datetime.timedelta(seconds=int(arg))).strftime("%Y%m%d-%H%M%S")
        table = {"name": self.names, "qname": self.qnames, "sid": self.sids}[kind]
        # A logical name the host does not have stays unique to this test: an account that does not exist.
        return table.get(arg, f"cmf-absent-{arg}" if kind != "sid" else f"{_DOMAIN}-4999")


# -------------------------------------------------------------------------------------------
# the simulated worker made from a vector's host


def build_state(host: dict) -> tuple[dict, Names]:
    names = Names(root=SIM_ROOT, host=SIM_HOST, service=SIM_SERVICE)
    accounts: dict[str, dict] = {}

    def add(logical: str, sid: str, entry: dict, domain: str | None = None) -> None:
        accounts[sid] = entry
        names.names[logical], names.sids[logical] = entry["name"], sid
        names.qnames[logical] = f"{domain or SIM_HOST}\\{entry['name']}"

    add("Administrator", f"{_DOMAIN}-500", {"name": "Administrator", "type": "user"})
    add("connection", f"{_DOMAIN}-1000", {"name": "ansible", "type": "user"})
    rid = 1001
    for logical, spec in (host.get("users") or {}).items():
        entry = {"name": logical, "type": "user"}
        if (spec or {}).get("enabled") is False:
            entry["enabled"] = False
        if "environment" in (spec or {}):
            entry["environment"] = dict(spec["environment"])
        add(logical, f"{_DOMAIN}-{rid}", entry)
        rid += 1
    for logical in host.get("orphans") or []:
        names.sids[logical] = f"{_DOMAIN}-{rid}"  # a SID no account has any more
        rid += 1
    for logical in host.get("groups") or {}:
        add(logical, f"{_DOMAIN}-{rid}", {"name": logical, "type": "group", "members": []})
        rid += 1
    for n, logical in enumerate(host.get("domain_groups") or {}):
        add(logical, f"{_CORP}-{3101 + n}", {"name": logical, "type": "group", "domain": "CORP", "members": []}, "CORP")
    builtin = {"Administrators": {}, **(host.get("builtin") or {})}
    for english, spec in builtin.items():
        sid = WELL_KNOWN_GROUPS[english.casefold()]
        add(english, sid, {"name": (spec or {}).get("name") or english, "type": "group", "members": []}, "BUILTIN")
    for table in ("groups", "domain_groups", "builtin"):
        for logical, spec in (host.get(table) or {}).items():
            accounts[names.sids[logical]]["members"] = [names.sids[m] for m in (spec or {}).get("members") or []]
    if not (builtin["Administrators"] or {}).get("only"):
        admins = accounts[names.sids["Administrators"]]["members"]
        admins[:0] = [names.sids["Administrator"], names.sids["connection"]]
    state: dict = {
        "hostname": SIM_HOST,
        "connection_account": names.sids["connection"],
        "accounts": accounts,
        "rights": {right: [names.sids[a] for a in holders] for right, holders in (host.get("rights") or {}).items()},
        "environment": dict(host.get("environment") or {}),
        "files": {},
        "services": {},
        "agent": {"version": simworker.example_state()["agent"]["version"]},
    }
    for path, content in (host.get("files") or {}).items():
        state["files"][names.expand(path)] = names.expand(content)
    service = host.get("service")
    if service:
        state["files"].setdefault(simworker.WORKER_TOML, {"base64": base64.b64encode(simworker.file_bytes(simworker.example_state())).decode()})
        account = str(service.get("account") or "LocalSystem")
        entry = {
            "state": service.get("state", "running"),
            "start_mode": service.get("start_mode", "auto"),
            "account": account if service_account_sid(account) else f".\\{names.names[account]}",
            "environment": [],
        }
        if service.get("sessions"):
            entry["sessions"] = [dict(s) for s in service["sessions"]]
        state["services"][SIM_SERVICE] = entry
    return state, names


# -------------------------------------------------------------------------------------------
# matching


def mismatches(expected: Any, actual: Any, where: str = "result") -> list[str]:
    """How ``actual`` fails ``expected`` (see the module's matchers); [] when it matches."""
    if isinstance(expected, dict) and "$exactly" in expected:
        want = expected["$exactly"]
        if not isinstance(actual, list) or len(actual) != len(want):
            return [f"{where}: {actual!r} is not exactly {want!r}"]
        return [m for n, (e, a) in enumerate(zip(want, actual, strict=True)) for m in mismatches(e, a, f"{where}[{n}]")]
    if isinstance(expected, dict) and "$regex" in expected:
        ok = isinstance(actual, str) and re.search(expected["$regex"], actual) is not None
        return [] if ok else [f"{where}: {actual!r} does not match /{expected['$regex']}/"]
    if isinstance(expected, dict) and "$type" in expected:
        types = {"list": list, "dict": dict, "str": str, "int": int, "bool": bool}
        ok = isinstance(actual, types[expected["$type"]])
        return [] if ok else [f"{where}: {actual!r} is not a {expected['$type']}"]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: {actual!r} is not a mapping"]
        problems = [f"{where}: has the key {k!r}" for k in expected.get("$without_keys", []) if k in actual]
        for key, value in expected.items():
            if key == "$without_keys":
                continue
            if key not in actual:
                problems.append(f"{where}: no key {key!r}")
            else:
                problems += mismatches(value, actual[key], f"{where}.{key}")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{where}: {actual!r} is not a list"]
        return [f"{where}: no item matches {item!r} in {actual!r}" for item in expected if not any(not mismatches(item, a) for a in actual)]
    if expected != actual or isinstance(expected, bool) != isinstance(actual, bool):
        return [f"{where}: {actual!r} != {expected!r}"]
    return []


def after_mismatches(after: dict, state: dict, names: Names) -> list[str]:
    """How the simulated worker's state differs from a case's ``after``."""
    problems: list[str] = []
    files = {name.casefold(): entry for name, entry in (state.get("files") or {}).items()}
    for path, want in (after.get("files") or {}).items():
        entry = files.get(path.casefold())
        got = None if entry is None else (base64.b64decode(entry["base64"]) if "base64" in entry else entry["text"].encode())
        wanted = None if want is None else (base64.b64decode(want["base64"]) if "base64" in want else want["text"].encode())
        if got != wanted:
            problems.append(f"after: file {path} holds {got!r}, not {wanted!r}")
    for pattern, count in (after.get("backups") or {}).items():
        found = [name for name in files if fnmatch.fnmatchcase(name, pattern.casefold())]
        if len(found) != count:
            problems.append(f"after: {len(found)} files match {pattern}, not {count}: {found}")
    for account, spec in (after.get("rights") or {}).items():
        sid = names.sids[account]
        held = {right.casefold() for right, holders in (state.get("rights") or {}).items() if sid in (holders or [])}
        problems += [f"after: {account} lacks {r}" for r in spec.get("has", []) if r.casefold() not in held]
        problems += [f"after: {account} holds {r}" for r in spec.get("lacks", []) if r.casefold() in held]
    for group, spec in (after.get("members") or {}).items():
        members = set(state["accounts"][names.sids[group]].get("members") or [])
        problems += [f"after: {m} is not in {group}" for m in spec.get("has", []) if names.sids[m] not in members]
        problems += [f"after: {m} is in {group}" for m in spec.get("lacks", []) if names.sids[m] in members]
    service_spec = after.get("service")
    if service_spec:
        entry = state["services"][SIM_SERVICE]
        got = {
            "state": entry.get("state"),
            "sessions": [str(s.get("id")) for s in entry.get("sessions") or []],
            "interrupted_sessions": entry.get("interrupted_sessions") or [],
        }
        problems += [f"after: service {k} is {got[k]!r}, not {v!r}" for k, v in service_spec.items() if got[k] != v]
    return problems
