#!/bin/sh
# Installs what ssehub needs from Debian's apt (and the test tools from npm).
# Usage: scripts/setup.sh run|test
#   run   libraries and tools to build and start the server
#   test  the same, plus everything the test suites use
# As root it runs apt-get; otherwise it prints the exact apt-get line and stops.
set -eu
what=${1:-run}

BUILD_PKGS="gcc make libc6-dev openssl libev-dev libhttp-parser-dev libjansson-dev libjwt-dev libssl-dev libsqlite3-dev libsodium-dev libhiredis-dev"
TEST_PKGS="libcriterion-dev nodejs chromium curl clang sqlite3 redis-server php-cli"

pkgs=$BUILD_PKGS
[ "$what" = test ] && pkgs="$pkgs $TEST_PKGS"

missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
# npm may come with nodejs (NodeSource) or as Debian's own package.
if [ "$what" = test ] && ! command -v npm >/dev/null 2>&1; then missing="$missing npm"; fi

if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "ssehub needs these Debian packages. Run as root:" >&2
        echo "  apt-get update && apt-get install -y$missing" >&2
        exit 1
    fi
    echo "setup: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing
fi

if [ "$what" = test ]; then
    # Reinstall the pinned test packages when the lock file is newer than the install.
    if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        echo "setup: npm ci"
        npm ci --no-audit --no-fund --loglevel=error
    fi
fi
