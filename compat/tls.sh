#!/usr/bin/env bash
# Runs both SDK compatibility suites (TypeScript, then Python) against engram
# over HTTPS: the harness makes a self-signed certificate first, and each
# client is told to trust it the way a user would (NODE_EXTRA_CA_CERTS,
# REQUESTS_CA_BUNDLE, SSL_CERT_FILE, each the roots trusted before plus
# it), so certificate checks stay on.
# Needs npm ci --prefix compat done once; arguments go to pytest.
# ENGRAM_COMPAT_TLS_SUITES names the suites to run ("typescript python", the
# default; .ci/run runs the TypeScript one).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
dir="$(mktemp -d "${TMPDIR:-/tmp}/engram-compat-tls-XXXXXX")"
trap 'rm -rf "$dir"' EXIT

(cd "$root" && go build -o "$dir/harness" ./compat/harness)
"$dir/harness" -tls-dir "$dir/tls" -make-cert
cert="$dir/tls/cert.pem"
# The clients trust the test certificate on top of the roots they trusted
# already: pip, making the Python suite's venvs, still fetches packages
# over HTTPS.
base="${SSL_CERT_FILE:-}"
if [ -z "$base" ]; then
  base="$(python3 -c 'import ssl; print(ssl.get_default_verify_paths().cafile or "")' 2>/dev/null || true)"
fi
bundle="$dir/tls/bundle.pem" extra="$dir/tls/node-extra.pem"
{ if [ -n "$base" ] && [ -r "$base" ]; then cat "$base"; fi; cat "$cert"; } >"$bundle"
{ if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -r "$NODE_EXTRA_CA_CERTS" ]; then cat "$NODE_EXTRA_CA_CERTS"; fi; cat "$cert"; } >"$extra"
export ENGRAM_COMPAT_HARNESS="$dir/harness" ENGRAM_COMPAT_TLS_DIR="$dir/tls"
export NODE_EXTRA_CA_CERTS="$extra" REQUESTS_CA_BUNDLE="$bundle" SSL_CERT_FILE="$bundle"
suites="${ENGRAM_COMPAT_TLS_SUITES:-typescript python}"
ran=0
for suite in $suites; do
  case "$suite" in
    typescript) npm test --prefix "$here" ;;
    python) bash "$here/python/run.sh" "$@" ;;
    *) echo "ENGRAM_COMPAT_TLS_SUITES: unknown suite $suite (typescript, python)" >&2; exit 2 ;;
  esac
  ran=$((ran + 1))
done
[ "$ran" -gt 0 ] || { echo "ENGRAM_COMPAT_TLS_SUITES names no suite" >&2; exit 2; }
