#!/usr/bin/env bash
# Runs both SDK compatibility suites (TypeScript, then Python) against engram
# over HTTPS: the harness makes a self-signed certificate first, and each
# client is told to trust it the way a user would (NODE_EXTRA_CA_CERTS,
# REQUESTS_CA_BUNDLE, SSL_CERT_FILE), so certificate checks stay on.
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
export ENGRAM_COMPAT_HARNESS="$dir/harness" ENGRAM_COMPAT_TLS_DIR="$dir/tls"
export NODE_EXTRA_CA_CERTS="$cert" REQUESTS_CA_BUNDLE="$cert" SSL_CERT_FILE="$cert"
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
