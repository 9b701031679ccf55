#!/usr/bin/env bash
# Runs Letta Code itself (@letta-ai/letta-code 0.32.18, headless) against a
# fresh engram with the scripted model: see compat/README.md.
#
# `npm install @letta-ai/letta-code@0.32.18` fails from the registry CI
# reaches (a dependency version it pins is not served), but its letta.js is
# one bundle whose only run-time imports are ws and node-pty. So run.sh
# fetches the package with `npm pack`, checks it against the integrity
# pinned below, unpacks it under compat/lettacode/.letta-code-VERSION/ (kept
# between runs), and installs ws and node-pty from package-lock.json beside
# it; Node finds them by walking up from letta.js. Letta Code asks for Node
# 22 and runs on 20.
#
# Arguments go to `node --test` (e.g. --test-name-pattern=round).
# $ENGRAM_COMPAT_HARNESS names a prebuilt harness; else it is built.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

version=0.32.18
integrity='sha512-PkpJewqQAQq5faHW4wIfmbKyIMCapiIVbsYhXs9CalB1oyUzV8Gg7+ZhhjK52PdSNgP20juc2KP2pQEPfmA6SQ=='
pkg="$here/.letta-code-$version/package"

command -v node >/dev/null || { echo "run.sh: node (>= 20) is required" >&2; exit 1; }
if [[ ! -f "$pkg/letta.js" ]]; then
	tmp="$(mktemp -d "${TMPDIR:-/tmp}/engram-lettacode-XXXXXX")"
	trap 'rm -rf "$tmp"' EXIT
	echo "run.sh: fetching @letta-ai/letta-code@$version" >&2
	(cd "$tmp" && npm pack "@letta-ai/letta-code@$version" --silent >/dev/null)
	tgz="$tmp/letta-ai-letta-code-$version.tgz"
	got="sha512-$(node -e 'const c=require("crypto"),f=require("fs");process.stdout.write(c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$tgz")"
	if [[ "$got" != "$integrity" ]]; then
		echo "run.sh: @letta-ai/letta-code@$version has integrity $got, not the pinned $integrity" >&2
		exit 1
	fi
	rm -rf "$here/.letta-code-$version"
	mkdir -p "$here/.letta-code-$version"
	tar xzf "$tgz" -C "$here/.letta-code-$version"
fi
# node-pty's install script builds a native module the headless runs never
# load; it is not run.
npm ci --prefix "$here" --no-audit --no-fund --ignore-scripts --silent

bin="${ENGRAM_COMPAT_HARNESS:-}"
if [[ -z "$bin" ]]; then
	build="$(mktemp -d "${TMPDIR:-/tmp}/engram-compat-bin-XXXXXX")"
	trap 'rm -rf "$build" ${tmp:+"$tmp"}' EXIT
	bin="$build/harness"
	(cd "$root" && go build -o "$bin" ./compat/harness)
fi

start=$SECONDS
ENGRAM_COMPAT_HARNESS="$bin" LETTA_CODE_JS="$pkg/letta.js" node --test --test-reporter=spec "$@" "$here/test/"
echo "run.sh: Letta Code suite took $((SECONDS - start)) s" >&2
