#!/usr/bin/env bash
# The one test command: bash tests/run.sh [--all-cores] [pytest arguments]
# Creates (or reuses) the virtual environment .venv from requirements-test.txt (PyPI only; the
# tools and ansible-core 2.19), the two ends of the supported ansible-core range, .venv-2.16
# (Python 3.10) and .venv-2.21 (Python 3.12+), and .venv-certification (the certification checks'
# pinned ansible-lint and galaxy-importer), then runs every test with pytest: unit, integration
# (playbooks on simulated workers, molecule), the PowerShell parse and contract checks, ruff,
# ansible-lint, antsibull-docs, ansible-doc, ansible-test sanity and units on each end, the
# playbook tests on each end, and the built tarball. With --all-cores, also sanity and units on
# every core between (2.17, 2.18, 2.20: .venv-2.17 ...). It ends with pytest's summary line; any
# failure exits non-zero (pytest's 5, nothing collected, included).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
environments=(2.16 2.21 certification)
if [ "${1:-}" = "--all-cores" ]; then
    shift
    environments+=(2.17 2.18 2.20)
    export DEADLINE_CMF_ALL_CORES=1
fi
# shellcheck source=scripts/ensure-venv.sh
. scripts/ensure-venv.sh
bash scripts/ensure-venv-core.sh "${environments[@]}"
exec python -m pytest -p no:cacheprovider "$@"
