#!/usr/bin/env bash
# Regenerates Inbox.json from Inbox.sol (or OUT from NAME.sol: build.sh OUT NAME) with the globally
# installed npm `solc` (see ops/setup).
set -euo pipefail
cd "$(dirname "$0")"
NODE_PATH="$(npm root -g 2>/dev/null)" exec node build.js "$@"
