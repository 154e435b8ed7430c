#!/usr/bin/env bash
# The one test command: bash tests/run.sh
# Creates (or reuses) the virtual environment .venv from requirements-test.txt (PyPI only) and
# .venv-2.21 (the newest supported ansible-core, Python 3.12+) from requirements-newest.txt, then
# runs every test with pytest: unit, integration (playbooks on simulated workers, molecule), the
# PowerShell parse and contract checks, ruff, ansible-lint, ansible-doc, ansible-test sanity and
# the built tarball. It ends with pytest's summary line; any failure exits non-zero (pytest's 5,
# nothing collected, included).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/ensure-venv.sh
. scripts/ensure-venv.sh
# shellcheck source=scripts/ensure-venv-newest.sh
. scripts/ensure-venv-newest.sh
exec python -m pytest -p no:cacheprovider "$@"
