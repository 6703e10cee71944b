# Shared settings for the project's scripts (sourced, not run).
export LORA_CACHE="${LORA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lora-book}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$LORA_CACHE/target}"
# A reader's plain `cargo run` at the repository root builds into ./target: make that the same
# build (a link to $CARGO_TARGET_DIR), so no second build happens there. A ./target that is
# already a real folder is left alone.
_lora_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$CARGO_TARGET_DIR"
if [[ ! -e "$_lora_repo/target" && ! -L "$_lora_repo/target" ]]; then
    ln -s "$CARGO_TARGET_DIR" "$_lora_repo/target"
fi
unset _lora_repo
# The embedded default model is cached where lorakit puts it when nothing is set
# ($LORAKIT_CACHE, else ~/.cache/lorakit: see chapters-code/src/settings.rs), so the scripts and
# a reader's own `cargo run` share one download.
# Two cores: candle's GEMM uses both.
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-2}"
mkdir -p "$LORA_CACHE"
