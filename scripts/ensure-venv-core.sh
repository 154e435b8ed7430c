#!/usr/bin/env bash
# Creates or reuses the test environments tests/run.sh needs besides .venv, from PyPI:
#   bash scripts/ensure-venv-core.sh 2.16 2.21 certification
#   bash scripts/ensure-venv-core.sh --which 2.16      # only print the Python it would use
# A core (2.16 ... 2.21) becomes .venv-<core>: requirements.txt, requirements-playbook-tests.txt and
# that core's ansible-core release from requirements-cores.txt. `certification` becomes .venv-certification from
# requirements-certification.txt (the certification checks' pinned ansible-lint and galaxy-importer).
# Each takes the oldest Python its controller supports that is found (python3.X on PATH, then pyenv's
# versions) and says so when it falls back to a newer one; DEADLINE_CMF_PYTHON_2_16 (and so on, or
# DEADLINE_CMF_PYTHON_CERTIFICATION) names an interpreter instead. Where no Python fits, nothing is
# created and the tests that need the environment fail saying so. An environment is reinstalled
# only when its requirements or its Python changed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

# The Pythons each controller runs on (ansible-core's support matrix), in the order they are tried.
pythons_for() {
    case "$1" in
        2.16 | 2.17) echo "3.10 3.11 3.12" ;;
        2.18 | 2.19) echo "3.11 3.12 3.13" ;;
        2.20 | 2.21) echo "3.12 3.13 3.14" ;;
        certification) echo "3.12 3.11 3.10" ;; # the certification workflow runs Python 3.12
        *) return 1 ;;
    esac
}

# The interpreter of Python $1 (3.10, ...): on PATH, else pyenv's newest patch release of it.
find_python() {
    local version="$1" candidate root installed=()
    local candidates=("python$version")
    root="$(pyenv root 2>/dev/null || true)"
    if [ -n "$root" ]; then
        mapfile -t installed < <(printf '%s\n' "$root"/versions/"$version".*/bin/python | sort -V -r)
        candidates+=("${installed[@]}")
    fi
    for candidate in "${candidates[@]}"; do
        # pyenv's shims exist even when the version is not installed: ask the interpreter itself.
        if "$candidate" -c "import sys; sys.exit(f'{sys.version_info[0]}.{sys.version_info[1]}' != '$version')" 2>/dev/null; then
            "$candidate" -c 'import sys; print(sys.executable)'
            return 0
        fi
    done
    return 1
}

# The interpreter for environment $1, printed; the fallback said on stderr. Fails when none fits.
choose_python() {
    local target="$1" override version first python
    override="DEADLINE_CMF_PYTHON_$(echo "$target" | tr '.a-z' '_A-Z')"
    if [ -n "${!override:-}" ]; then
        echo "${!override}"
        return 0
    fi
    read -r first _ <<<"$(pythons_for "$target")"
    for version in $(pythons_for "$target"); do
        if python="$(find_python "$version")"; then
            if [ "$version" != "$first" ]; then
                echo "ensure-venv-core: no Python $first found for .venv-$target; it uses Python $version instead" >&2
            fi
            echo "$python"
            return 0
        fi
    done
    echo "ensure-venv-core: no Python for .venv-$target found (tried $(pythons_for "$target"): python3.X on PATH, pyenv);" \
        ".venv-$target not created: set $override to an interpreter" >&2
    return 1
}

ensure() {
    local target="$1" venv requirements wanted python
    venv=".venv-$target"
    if [ "$target" = certification ]; then
        requirements=(-r requirements-certification.txt)
        wanted="$(cat requirements-certification.txt)"
    else
        local pin
        pin="$(grep -E "^ansible-core==${target//./\\.}\.[0-9]+\s*$" requirements-cores.txt | tr -d '[:space:]')"
        if [ -z "$pin" ]; then
            echo "ensure-venv-core: requirements-cores.txt names no ansible-core $target release" >&2
            return 1
        fi
        # the playbook tests run this core's ansible-playbook (and ansible-runner) on simulated workers
        requirements=(-r requirements.txt -r requirements-playbook-tests.txt "$pin")
        wanted="$(cat requirements.txt requirements-playbook-tests.txt requirements-simulated-worker.txt)$pin"
    fi
    # no Python: nothing is created, and the tests that need the environment fail saying so
    python="$(choose_python "$target")" || return 0

    local stamp="$venv/.requirements.sha256" digest
    digest="$(printf '%s\n%s\n' "$wanted" "$("$python" -c 'import sys; print(sys.version)')" | sha256sum | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ] && [ -x "$venv/bin/python" ]; then
        return 0
    fi
    echo "ensure-venv-core: installing $venv with Python $("$python" -c 'import sys; print(sys.version.split()[0])') (${requirements[*]})" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv" &&
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip &&
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}" &&
        echo "$digest" >"$stamp"
}

which=no
if [ "${1:-}" = "--which" ]; then # print the interpreter each environment would be made with, and stop
    which=yes
    shift
fi
status=0
for target in "$@"; do
    if ! pythons_for "$target" >/dev/null; then
        echo "ensure-venv-core: unknown environment '$target' (a core 2.16 to 2.21, or certification)" >&2
        status=1
    elif [ "$which" = yes ]; then
        choose_python "$target" || status=1
    else
        ensure "$target" || status=1
    fi
done
exit "$status"
