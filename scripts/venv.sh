# Sourced by scripts/demo and scripts/test: make .venv and install the project into it.
# Reinstalls when pyproject.toml changes. PYTHON picks the interpreter (default python3).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ ! -x .venv/bin/python ]; then
    echo "Creating .venv with ${PYTHON:-python3}" >&2
    "${PYTHON:-python3}" -m venv .venv
fi
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat .venv/.chartbuild-installed 2>/dev/null)" != "$want" ]; then
    echo "Installing chartbuild and its dependencies into .venv" >&2
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".[dev]"
    echo "$want" > .venv/.chartbuild-installed
fi
