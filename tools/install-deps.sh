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

# Installs a folder's locked npm packages when they are missing or older than its lock file (a
# pull that adds a package then installs it too). npm records what it installed in
# node_modules/.package-lock.json.
npm_sync() { # dir [npm ci flags...]
        local dir=$1
        shift
        if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
                [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
                (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error "$@")
        fi
}

# The browser tests drive Debian's chromium through npm's playwright-core (no browser download)
# and check every page with axe-core.
npm_sync tests/browser
# The system tests validate the gateway's OpenAPI document (@readme/openapi-parser) and check
# every answer against it (ajv).
npm_sync tests/system
# The API reference page (/api/docs) is Swagger UI from npm, copied into the web root by make.
npm_sync gateway/apidocs --ignore-scripts
# The files service's S3 backend is tested against s3rver, an S3-compatible server on loopback.
npm_sync tests/s3
