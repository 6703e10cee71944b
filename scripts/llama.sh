#!/usr/bin/env bash
# Real llama.cpp for the tests: node-llama-cpp's prebuilt CPU binary from the npm registry,
# pinned by tools/llama/package-lock.json and installed outside the clone.
#
#   bash scripts/llama.sh install      install (idempotent; quick when already installed), with
#                                      a Python venv holding numpy for llama.cpp's gguf-py
#                                      (the block-type reference of tests/dequant_reference.rs)
#   bash scripts/llama.sh path         print the install dir; exit 1 if not (or not fully) installed
#   bash scripts/llama.sh run ARGS…    run tools/llama/score.mjs (see its header) with ARGS
#   bash scripts/llama.sh vocab NAME   print the path of llama.cpp's models/ggml-vocab-NAME.gguf (a
#                                      vocabulary-only GGUF), taken once from the bundled source
#   bash scripts/llama.sh ask DIR "MESSAGE" [MAX_TOKENS]
#                                      answer MESSAGE as `ollama run` would with the Modelfile in DIR
#                                      (its TEMPLATE, SYSTEM and stops, rendered by `lora deploy
#                                      --print-prompt`), decoded greedily by llama.cpp; installs first
#
# Needs Node >= 20 and npm. Nothing is fetched from GitHub and nothing is compiled: the install
# runs without package scripts (node-llama-cpp's postinstall would otherwise try to download and
# build llama.cpp when the prebuilt binary does not fit), and then checks that the prebuilt
# binary loads with getLlama({gpu: false, build: "never"}).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

SRC="$PWD/tools/llama"
DIR="$LORA_CACHE/tools/llama"
# Belt and braces: should anything still reach node-llama-cpp's install or build code, it must
# neither download nor build llama.cpp.
export NODE_LLAMA_CPP_SKIP_DOWNLOAD=true NODE_LLAMA_CPP_POSTINSTALL=skip

stamp() { cat "$SRC/package.json" "$SRC/package-lock.json" | sha256sum | cut -d' ' -f1; }

installed() { [[ -f "$DIR/.installed" && "$(cat "$DIR/.installed")" == "$(stamp)" && -d "$DIR/node_modules/node-llama-cpp" ]]; }

need_node() {
    command -v node >/dev/null && command -v npm >/dev/null || {
        echo "llama.sh: node and npm are needed (Node >= 20)" >&2
        exit 1
    }
    local major
    major="$(node -p 'process.versions.node.split(".")[0]')"
    ((major >= 20)) || {
        echo "llama.sh: Node >= 20 is needed, found $(node --version)" >&2
        exit 1
    }
}

# Every package of the committed lock (bar the optional ones) is installed at its locked version.
check_versions() {
    node -e '
        const fs = require("fs"), path = require("path");
        const [src, dir] = process.argv.slice(1);
        const lock = JSON.parse(fs.readFileSync(path.join(src, "package-lock.json"), "utf8"));
        const bad = [];
        for (const [key, p] of Object.entries(lock.packages)) {
            if (key === "" || p.optional) continue;
            let v = null;
            try { v = JSON.parse(fs.readFileSync(path.join(dir, key, "package.json"), "utf8")).version; } catch {}
            if (v !== p.version) bad.push(`${key}: locked ${p.version}, installed ${v}`);
        }
        if (bad.length) { console.error("llama.sh: the install differs from tools/llama/package-lock.json:\n  " + bad.join("\n  ")); process.exit(1); }
    ' "$SRC" "$DIR"
}

# The prebuilt binary loads, without any build or download. (A file, not `node -e`: node-llama-cpp
# tests the binary in a forked node, which inherits node's flags, and `--input-type` breaks that.)
verify() {
    cat >"$DIR/verify.mjs" <<'JS'
import {getLlama, LlamaLogLevel} from "node-llama-cpp";
const llama = await getLlama({gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true, progressLogs: false, logLevel: LlamaLogLevel.error});
console.log(`llama.cpp ${llama.llamaCppRelease.release} (${llama.buildType} binary, CPU) loads`);
await llama.dispose();
JS
    (cd "$DIR" && node verify.mjs)
}

# numpy (pinned by tools/llama/requirements-gguf-py.txt) in a venv: gguf-py itself comes from the
# llama.cpp source inside node-llama-cpp, at the commit of the binary the tests run.
PYENV="$LORA_CACHE/tools/gguf-py-venv"
install_gguf_py() {
    local want
    want="$(sha256sum <"$SRC/requirements-gguf-py.txt" | cut -d' ' -f1)"
    [[ -f "$PYENV/.installed" && "$(cat "$PYENV/.installed")" == "$want" ]] && return 0
    echo "== installing numpy for gguf-py into $PYENV"
    rm -rf "$PYENV"
    python3 -m venv "$PYENV"
    "$PYENV/bin/pip" install -q --disable-pip-version-check -r "$SRC/requirements-gguf-py.txt"
    echo "$want" >"$PYENV/.installed"
}

case "${1:-}" in
install)
    need_node
    install_gguf_py
    if installed; then
        echo "llama.cpp runner already installed in $DIR"
        exit 0
    fi
    mkdir -p "$DIR"
    rm -f "$DIR/.installed"
    cp "$SRC/package.json" "$SRC/package-lock.json" "$DIR/"
    echo "== installing node-llama-cpp (prebuilt CPU llama.cpp) into $DIR"
    # `npm install` with the committed lock installs exactly the locked versions. (`npm ci` would
    # refuse: the lock lacks node-llama-cpp's optional binaries for other platforms, e.g. macOS and
    # Windows, that not every registry mirror carries.)
    # --omit=optional: only the CPU binary (a direct dependency), not the CUDA/Vulkan ones (600 MB).
    # --ignore-scripts: no postinstall (see above).
    (cd "$DIR" && npm install --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error)
    check_versions
    verify
    stamp >"$DIR/.installed"
    echo "llama.cpp runner installed in $DIR"
    ;;
path)
    echo "$DIR"
    installed || {
        echo "llama.sh: the llama.cpp runner is not installed (or is outdated); run: bash scripts/llama.sh install" >&2
        exit 1
    }
    ;;
run)
    shift
    installed || {
        echo "llama.sh: the llama.cpp runner is not installed (or is outdated); run: bash scripts/llama.sh install" >&2
        exit 1
    }
    LORA_LLAMA_DIR="$DIR" exec node "$SRC/score.mjs" "$@"
    ;;
vocab)
    (($# == 2)) || { echo 'usage: bash scripts/llama.sh vocab NAME (e.g. llama-bpe)' >&2; exit 2; }
    installed || bash "$0" install >&2
    # llama.cpp's source ships inside node-llama-cpp as a git bundle of the release it was built from.
    bundle="$DIR/node_modules/node-llama-cpp/llama/gitRelease.bundle"
    commit="$(git bundle list-heads "$bundle" | awk 'NR == 1 {print $1}')"
    out="$DIR/vocab-files/$commit/ggml-vocab-$2.gguf"
    if [[ ! -f "$out" ]]; then
        repo="$(mktemp -d)"
        trap 'rm -rf "$repo"' EXIT
        git -C "$repo" init -q
        git -C "$repo" fetch -q "$bundle" HEAD
        mkdir -p "$(dirname "$out")"
        git -C "$repo" show "$commit:models/ggml-vocab-$2.gguf" >"$out.tmp" || {
            rm -f "$out.tmp"
            echo "llama.sh: llama.cpp's source has no models/ggml-vocab-$2.gguf" >&2
            exit 1
        }
        mv "$out.tmp" "$out"
    fi
    echo "$out"
    ;;
ask)
    (($# >= 3)) || { echo 'usage: bash scripts/llama.sh ask DIR "MESSAGE" [MAX_TOKENS]' >&2; exit 2; }
    installed || bash "$0" install >&2
    cargo build -q -p lora-cli --bin lora
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    "$CARGO_TARGET_DIR/debug/lora" deploy "$2" --print-prompt --prompt "$3" >"$work/request.json"
    # The request's prompt and stops as score.mjs's --prompts file; its model and adapters as flags.
    mapfile -t files < <(node -e '
        const fs = require("fs");
        const r = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
        fs.writeFileSync(process.argv[2], JSON.stringify({prompts: [r.prompt], stops: r.stops}));
        console.log(r.model);
        for (const a of r.adapters) console.log(a);
    ' "$work/request.json" "$work/prompts.json")
    args=(--model "${files[0]}")
    for a in "${files[@]:1}"; do args+=(--lora "$a"); done
    LORA_LLAMA_DIR="$DIR" node "$SRC/score.mjs" "${args[@]}" --prompts "$work/prompts.json" --greedy "${4:-64}" >"$work/answer.json"
    node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).rows[0].text.trim())' "$work/answer.json"
    ;;
*)
    sed -n '2,18p' "$0" >&2
    exit 2
    ;;
esac
