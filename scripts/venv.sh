# Sourced by scripts/demo and scripts/test: make a virtual environment and install the
# project into it. Reinstalls when pyproject.toml changes.
# VENV names it (default .venv); PYTHON picks its interpreter (default python3).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "Creating $VENV with ${PYTHON:-python3}" >&2
    "${PYTHON:-python3}" -m venv "$VENV"
fi
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$VENV/.chartbuild-installed" 2>/dev/null)" != "$want" ]; then
    echo "Installing chartbuild and its dependencies into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e ".[dev]"
    echo "$want" > "$VENV/.chartbuild-installed"
fi
