#!/usr/bin/env bash
# Fuzzing every parser of outside input (issue #9) with cargo-fuzz (libFuzzer, AddressSanitizer,
# overflow checks on). Targets live in fuzz/fuzz_targets/, seeds in fuzz/corpus/<target>/.
#
#   bash scripts/fuzz.sh install                          cargo-fuzz (pinned) + the nightly toolchain
#   bash scripts/fuzz.sh build                            build every target
#   bash scripts/fuzz.sh run [TARGET] [--runs N] [--seconds S]   fuzz one target (default: all, 60 s each)
#   bash scripts/fuzz.sh ci                               every target for 20 s; fails on any crash
#   bash scripts/fuzz.sh list                             the target names
#
# A crash, panic, leak, timeout (> 10 s for one input) or an allocation over 1 GiB (RSS over
# 2 GiB) stops the run with a non-zero status; the input lands in $LORA_CACHE/fuzz-artifacts/.
# Reproduce one with: bash scripts/fuzz.sh run TARGET -- PATH_TO_INPUT
# The growing corpus is kept in $LORA_CACHE/fuzz-corpus/<target>/ (outside the clone).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

CARGO_FUZZ_VERSION=0.13.2
TOOLS="$LORA_CACHE/tools"
export PATH="$TOOLS/bin:$PATH"
# Its own target dir: sanitizer flags would otherwise invalidate the main build.
FUZZ_TARGET_DIR="$LORA_CACHE/fuzz-target"
CORPUS="$LORA_CACHE/fuzz-corpus"
ARTIFACTS="$LORA_CACHE/fuzz-artifacts"
# The targets are fuzz/Cargo.toml's [[bin]] entries, in file order: one list to keep.
mapfile -t TARGETS < <(awk '/^\[\[bin\]\]/ { bin = 1; next } /^\[/ { bin = 0 } bin && /^name *=/ { gsub(/[" ]/, "", $0); sub(/^name=/, ""); print }' fuzz/Cargo.toml)
(( ${#TARGETS[@]} > 0 )) || { echo "fuzz.sh: no [[bin]] targets in fuzz/Cargo.toml" >&2; exit 2; }

fuzz() { cargo +nightly fuzz "$@"; }
build_flags=(--fuzz-dir fuzz --target-dir "$FUZZ_TARGET_DIR" --debug-assertions)

install() {
    rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
    if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
        cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$TOOLS"
    fi
}

# run TARGET [--runs N] [--seconds S] [-- EXTRA LIBFUZZER ARGS OR INPUT FILES]
run_one() {
    local target=$1; shift
    local limits=() extra=()
    while (($#)); do
        case $1 in
            --runs) limits+=("-runs=$2"); shift 2 ;;
            --seconds) limits+=("-max_total_time=$2"); shift 2 ;;
            --) shift; extra=("$@"); break ;;
            *) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
        esac
    done
    if ((${#extra[@]})) && [[ -f ${extra[0]} ]]; then
        # Reproduce: run the target once on the given inputs, no corpus, no mutation.
        fuzz run "${build_flags[@]}" "$target" "${extra[@]}"
        return
    fi
    ((${#limits[@]})) || limits=(-max_total_time=60)
    mkdir -p "$CORPUS/$target" "$ARTIFACTS/$target"
    echo "== fuzz $target (${limits[*]})"
    # The first corpus dir collects new inputs; the committed seeds stay untouched.
    fuzz run "${build_flags[@]}" "$target" "$CORPUS/$target" "fuzz/corpus/$target" -- \
        -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$ARTIFACTS/$target/" "${limits[@]}" "${extra[@]}"
}

cmd=${1:-}; shift || true
case $cmd in
    install) install ;;
    build) install; fuzz build "${build_flags[@]}" ;;
    list) printf '%s\n' "${TARGETS[@]}" ;;
    run)
        install
        if [[ ${1:-} && ${1:0:1} != - ]]; then
            target=$1; shift
            [[ " ${TARGETS[*]} " == *" $target "* ]] || { echo "fuzz.sh: unknown target $target (see: fuzz.sh list)" >&2; exit 2; }
            run_one "$target" "$@"
        else
            for t in "${TARGETS[@]}"; do run_one "$t" "$@"; done
        fi
        ;;
    ci)
        install
        fuzz build "${build_flags[@]}"
        for t in "${TARGETS[@]}"; do run_one "$t" --seconds "${FUZZ_SECONDS:-20}"; done
        echo "== fuzz: no crash in ${#TARGETS[@]} targets"
        ;;
    *) sed -n '2,15p' "$0" >&2; exit 2 ;;
esac
