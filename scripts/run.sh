#!/usr/bin/env bash
# The README's main command: builds the `lora` CLI, fetches the default model on first use,
# and runs the demo. Extra arguments go to `lora demo`.
# (The dev profile compiles dependencies with opt-level 3 — see Cargo.toml — so this is as
# fast as a release build and shares its build with scripts/test.sh.)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build -p lora-cli --bin lora
exec "$CARGO_TARGET_DIR/debug/lora" demo "$@"
