#!/usr/bin/env bash
# Sourced by tests/run.sh after scripts/ensure-venv.sh: creates or reuses the second test
# environment (default .venv-2.21) with the newest supported ansible-core from
# requirements-newest.txt. ansible-core 2.20+ needs Python 3.12 or later: the first of
# $PYTHON_NEWEST, python3.12 / python3.13 on PATH and pyenv's 3.12 / 3.13 is used. Where none is
# found nothing is created, and the tests that need this environment fail saying so.
newest_venv="${DEADLINE_CMF_NEWEST_VENV:-.venv-2.21}"
newest_python=""
for candidate in "${PYTHON_NEWEST:-}" python3.12 python3.13 \
    "$(pyenv root 2>/dev/null)"/versions/3.12*/bin/python "$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python; do
    [ -n "$candidate" ] || continue
    # pyenv's shims exist even when the version is not installed: ask the interpreter itself.
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
        newest_python="$candidate"
        break
    fi
done
if [ -z "$newest_python" ] && [ ! -x "$newest_venv/bin/python" ]; then
    echo "ensure-venv-newest: no Python 3.12+ found (python3.12, python3.13, pyenv); $newest_venv not created" >&2
else
    if [ ! -x "$newest_venv/bin/python" ]; then
        "$newest_python" -m venv "$newest_venv"
    fi
    newest_stamp="$newest_venv/.requirements.sha256"
    newest_wanted="$(cat requirements.txt requirements-newest.txt | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$newest_stamp" ] || [ "$(cat "$newest_stamp")" != "$newest_wanted" ]; then
        echo "ensure-venv-newest: installing requirements-newest.txt into $newest_venv" >&2
        "$newest_venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
        "$newest_venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-newest.txt
        echo "$newest_wanted" > "$newest_stamp"
    fi
fi
