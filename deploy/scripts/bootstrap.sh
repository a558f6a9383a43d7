#!/usr/bin/env bash
# Create the project's Python environment in .local/venv (Python 3.11) and
# install the pinned dependencies; does nothing when pyproject.toml is unchanged.
set -Eeuo pipefail
REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
VENV=$REPO_ROOT/.local/venv
MARKER=$VENV/.installed

pick_python() {
  for candidate in "${PYTHON:-}" python3.11 python3; do
    [[ -n $candidate ]] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "bootstrap: Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

want=$(cat "$REPO_ROOT/pyproject.toml" | sha256sum | cut -c1-16)
if [[ -x $VENV/bin/python && -f $MARKER && $(cat "$MARKER") == "$want" ]]; then
  exit 0
fi
python=$(pick_python)
mkdir -p "$REPO_ROOT/.local"
if [[ ! -x $VENV/bin/python ]]; then
  echo "bootstrap: creating $VENV"
  "$python" -m venv "$VENV"
fi
echo "bootstrap: installing pinned Python packages (pyproject.toml)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip==25.3
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$REPO_ROOT[test,bench]"
echo "$want" >"$MARKER"
