#!/usr/bin/env bash
# Runs both SDK compatibility suites (TypeScript, then Python) against engram
# over HTTPS: the harness makes a self-signed certificate first, and each
# client is told to trust it the way a user would (NODE_EXTRA_CA_CERTS,
# REQUESTS_CA_BUNDLE, SSL_CERT_FILE), so certificate checks stay on.
# Needs npm ci --prefix compat done once; arguments go to pytest.
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
npm test --prefix "$here"
bash "$here/python/run.sh" "$@"
