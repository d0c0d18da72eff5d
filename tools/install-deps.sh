#!/bin/sh
# Installs the Debian packages EasyJournal builds, runs and is tested with (every section of
# deploy/packages.txt), when any is missing. As root it runs apt-get; otherwise it prints the
# one command to run and fails. Then the npm packages of the browser and S3 tests.
set -eu
cd "$(dirname "$0")/.."

PKGS=$(deploy/packages.sh build runtime web dev)

missing=""
for p in $PKGS; do
        # Node.js from another source (e.g. NodeSource) bundles npm, which Debian's npm conflicts
        # with: a working npm command is enough.
        if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then
                continue
        fi
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
                missing="$missing $p"
        fi
done

if [ -n "$missing" ]; then
        if [ "$(id -u)" -eq 0 ]; then
                echo "Installing:$missing"
                export DEBIAN_FRONTEND=noninteractive
                apt-get update -qq
                # shellcheck disable=SC2086
                apt-get install -y -qq --no-install-recommends $missing >/dev/null
        else
                echo "Missing packages. Run:" >&2
                echo "  sudo apt-get install -y$missing" >&2
                exit 1
        fi
fi

# The browser tests drive Debian's chromium through npm's playwright-core (no browser download).
if [ ! -d tests/browser/node_modules/playwright-core ]; then
        (cd tests/browser && npm install --no-audit --no-fund --loglevel=error)
fi

# The system tests validate the gateway's OpenAPI document (@readme/openapi-parser) and check
# every answer against it (ajv).
if [ ! -d tests/system/node_modules/@readme/openapi-parser ] || [ ! -d tests/system/node_modules/ajv ]; then
        (cd tests/system && npm ci --no-audit --no-fund --loglevel=error)
fi

# The API reference page (/api/docs) is Swagger UI from npm, copied into the web root by make.
if [ ! -d gateway/apidocs/node_modules/swagger-ui-dist ]; then
        (cd gateway/apidocs && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

# The files service's S3 backend is tested against s3rver, an S3-compatible server on loopback.
if [ ! -d tests/s3/node_modules/s3rver ]; then
        (cd tests/s3 && npm install --no-audit --no-fund --loglevel=error)
fi
