#!/usr/bin/env bash
# The README's main command: builds the `lora` CLI (release), fetches the default model on
# first use, and runs the demo. Extra arguments go to `lora demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release -p lorakit --bin lora
exec "$CARGO_TARGET_DIR/release/lora" demo "$@"
