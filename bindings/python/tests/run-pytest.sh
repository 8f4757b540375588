#!/usr/bin/env bash
# bindings/python/tests/run-pytest.sh PYTHON LIBRARY BASETEMP [PYTEST ARGS...]
#
# Run the Python binding's pytest suite (or the part the arguments select)
# with PYTHON (a python3 that can import pytest) against the shared library
# LIBRARY (found by the binding through HARVBK_LIBRARY) and the package from
# this source tree. Temporary files go to BASETEMP (emptied first); nothing
# is written into the source tree (no __pycache__, no .pytest_cache).
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: run-pytest.sh PYTHON LIBRARY BASETEMP [PYTEST ARGS...]" >&2; exit 2; }
py=$1 lib=$2 base=$3
shift 3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pkg=$(dirname "$here")
[ -f "$lib" ] || { echo "run-pytest.sh: no library at $lib" >&2; exit 1; }
export HARVBK_LIBRARY=$lib
export PYTHONPATH=$pkg${PYTHONPATH:+:$PYTHONPATH}
export PYTHONDONTWRITEBYTECODE=1
rm -rf "$base"
mkdir -p "$base"
cd "$pkg"
exec "$py" -m pytest -p no:cacheprovider --basetemp="$base" -ra "$@"
