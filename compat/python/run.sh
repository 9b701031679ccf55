#!/usr/bin/env bash
# Runs the Python compatibility suite: Letta 0.5's client (letta 0.5.5) and the
# official modern SDK (letta-client 1.12.1) drive a real engram server.
#
# It makes, or reuses, a venv at compat/python/.venv holding exactly
# requirements.lock (the venv is remade when the lock's hash changes), builds
# the harness unless $ENGRAM_COMPAT_HARNESS names one, and runs pytest.
# Arguments go to pytest: run.sh -k messages, run.sh test_modern_sdk.py -x.
# $PYTHON picks the interpreter (default python3).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"
venv="$here/.venv"
lock="$here/requirements.lock"

command -v "$python" >/dev/null || { echo "run.sh: $python not found; the Python suite needs Python 3.11" >&2; exit 1; }
"$python" -c 'import venv, ensurepip' 2>/dev/null || {
	echo "run.sh: $python cannot make a venv (no venv/ensurepip module); install it, e.g. apt-get install python3-venv" >&2
	exit 1
}

want="$(sha256sum "$lock" | cut -d' ' -f1) $("$python" -c 'import sys; print(sys.version.split()[0])')"
if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.lock-hash" 2>/dev/null)" != "$want" ]]; then
	echo "run.sh: making $venv from requirements.lock" >&2
	rm -rf "$venv"
	"$python" -m venv "$venv"
	"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$lock"
	echo "$want" >"$venv/.lock-hash"
fi

bin="${ENGRAM_COMPAT_HARNESS:-}"
if [[ -z "$bin" ]]; then
	build="$(mktemp -d "${TMPDIR:-/tmp}/engram-compat-bin-XXXXXX")"
	trap 'rm -rf "$build"' EXIT
	bin="$build/harness"
	(cd "$root" && go build -o "$bin" ./compat/harness)
fi

cd "$here"
set +e
ENGRAM_COMPAT_HARNESS="$bin" "$venv/bin/python" -m pytest -v --durations=15 -p no:cacheprovider "$@"
code=$?
set -e
if [[ $code -eq 5 ]]; then
	echo "run.sh: pytest collected no tests" >&2
fi
exit "$code"
