#!/usr/bin/env bash
# Sourced by the README's two commands: creates or reuses the virtual environment (default .venv)
# with everything from requirements-test.txt (PyPI only), and puts it first on PATH.
venv="${DEADLINE_CMF_VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
# Reinstall only when the requirements changed since the last install.
stamp="$venv/.requirements.sha256"
wanted="$(cat requirements.txt requirements-demo.txt requirements-simulated-worker.txt requirements-playbook-tests.txt requirements-test.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
    echo "$wanted" > "$stamp"
fi
PATH="$PWD/$venv/bin:$PATH"
export PATH
