#!/usr/bin/env bash
# Runs the Python compatibility suite: Letta 0.5's client (letta 0.5.5), the
# official modern SDK (letta-client 1.12.1) and Letta 0.5.1's client drive a
# real engram server.
#
# letta 0.5.5 and 0.5.1 cannot share a venv, so there are two, each made (or
# reused) from its lock and remade when the lock's hash changes:
#   compat/python/.venv     requirements.lock     test_letta05.py, test_modern_sdk.py
#   compat/python/.venv051  requirements051.lock  test_letta051.py
# It builds the harness unless $ENGRAM_COMPAT_HARNESS names one, then runs
# pytest once per venv, each on its own files only; it fails when either run
# fails or collects no tests.
#
# Arguments go to both pytest runs: run.sh -k messages -x. Test files among
# them choose the runs: run.sh test_modern_sdk.py -x runs only the first venv,
# run.sh test_letta051.py::test_blocks only the second.
# $PYTHON picks the interpreter (default python3).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"

command -v "$python" >/dev/null || { echo "run.sh: $python not found; the Python suite needs Python 3.11" >&2; exit 1; }
"$python" -c 'import venv, ensurepip' 2>/dev/null || {
	echo "run.sh: $python cannot make a venv (no venv/ensurepip module); install it, e.g. apt-get install python3-venv" >&2
	exit 1
}

# Sort the arguments: test files go to the venv that can import them,
# everything else to both runs.
opts=() files05=() files051=()
for a in "$@"; do
	case "$a" in
	*.py | *.py::*)
		# A path from the caller's directory still names the file after cd.
		f="${a%%::*}"
		[[ ! -f "$f" ]] || a="$(cd "$(dirname "$f")" && pwd)/$(basename "$f")${a#"$f"}"
		;;
	esac
	case "$a" in
	*test_letta051.py | *test_letta051.py::*) files051+=("$a") ;;
	*.py | *.py::*) files05+=("$a") ;;
	*) opts+=("$a") ;;
	esac
done
if [[ ${#files05[@]} -eq 0 && ${#files051[@]} -eq 0 ]]; then
	files05=(test_letta05.py test_modern_sdk.py)
	files051=(test_letta051.py)
fi

# venv DIR LOCK makes DIR hold exactly LOCK, unless it already does.
venv() {
	local dir="$1" lock="$2" want
	want="$(sha256sum "$lock" | cut -d' ' -f1) $("$python" -c 'import sys; print(sys.version.split()[0])')"
	if [[ ! -x "$dir/bin/python" || "$(cat "$dir/.lock-hash" 2>/dev/null)" != "$want" ]]; then
		echo "run.sh: making $dir from $(basename "$lock")" >&2
		rm -rf "$dir"
		"$python" -m venv "$dir"
		"$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$lock"
		echo "$want" >"$dir/.lock-hash"
	fi
}
[[ ${#files05[@]} -eq 0 ]] || venv "$here/.venv" "$here/requirements.lock"
[[ ${#files051[@]} -eq 0 ]] || venv "$here/.venv051" "$here/requirements051.lock"

bin="${ENGRAM_COMPAT_HARNESS:-}"
if [[ -z "$bin" ]]; then
	build="$(mktemp -d "${TMPDIR:-/tmp}/engram-compat-bin-XXXXXX")"
	trap 'rm -rf "$build"' EXIT
	bin="$build/harness"
	(cd "$root" && go build -o "$bin" ./compat/harness)
fi

# run NAME VENV FILES... runs pytest in VENV on FILES; a failure (exit 5, no
# tests collected, included) is recorded in failed, and the first one's code
# is run.sh's.
failed=() status=0
run() {
	local name="$1" dir="$2" code
	shift 2
	echo "run.sh: $name: pytest $*" >&2
	set +e
	ENGRAM_COMPAT_HARNESS="$bin" "$dir/bin/python" -m pytest -v --durations=15 -p no:cacheprovider "$@"
	code=$?
	set -e
	if [[ $code -eq 5 ]]; then
		echo "run.sh: $name: pytest collected no tests" >&2
	fi
	if [[ $code -ne 0 ]]; then
		failed+=("$name (exit $code)")
		[[ $status -ne 0 ]] || status=$code
	fi
}

cd "$here"
[[ ${#files05[@]} -eq 0 ]] || run "letta 0.5.5 + letta-client" "$here/.venv" "${files05[@]}" ${opts[@]+"${opts[@]}"}
[[ ${#files051[@]} -eq 0 ]] || run "letta 0.5.1" "$here/.venv051" "${files051[@]}" ${opts[@]+"${opts[@]}"}

if [[ ${#failed[@]} -gt 0 ]]; then
	echo "run.sh: failed: ${failed[*]}" >&2
fi
exit "$status"
