#!/usr/bin/env bash
# The project's test command (README, and CI through .ci/run).
# Builds into a cache outside the clone so repeated runs and fresh clones stay fast.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
# Each section says when it started (minutes:seconds since the start), for CI's time budget.
say() { printf '== [%02d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

say "real llama.cpp for the export tests (node-llama-cpp prebuilt binary, from npm)"
bash scripts/llama.sh install

say "style: rustfmt (rustfmt.toml) and clippy, warnings as errors"
cargo fmt --all --check
cargo clippy --workspace --all-targets -q -- -D warnings

say "lorakit tests (cargo test, target dir $CARGO_TARGET_DIR)"
cargo test --workspace --no-fail-fast "$@" 2>&1

say "the book: pinned toolchain, Debian's chromium, playwright-core (idempotent)"
bash scripts/book.sh install
say "the book: data freshness, build, links/offline/KaTeX checks, headless Chromium"
bash scripts/book.sh check
bash scripts/book.sh selftest

say "fuzzing: every parser of outside input, ${FUZZ_SECONDS:-10} s per target (scripts/fuzz.sh)"
FUZZ_SECONDS="${FUZZ_SECONDS:-10}" bash scripts/fuzz.sh ci
say "done"
