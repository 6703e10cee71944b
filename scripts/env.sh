# Shared settings for the project's scripts (sourced, not run).
export LORA_CACHE="${LORA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lora-book}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$LORA_CACHE/target}"
# The embedded default model is cached here (see chapters-code/src/fetch.rs).
export LORAKIT_CACHE="${LORAKIT_CACHE:-$LORA_CACHE/models}"
# Two cores: candle's GEMM uses both.
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-2}"
mkdir -p "$LORA_CACHE"
