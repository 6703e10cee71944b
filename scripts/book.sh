#!/usr/bin/env bash
# The book's toolchain, in one place: install the pinned tools, build the book (and fail on
# the problems mdBook itself only logs), serve it locally.
#
#   bash scripts/book.sh install   # pinned mdbook + preprocessors, Debian's chromium, playwright-core (idempotent)
#   bash scripts/book.sh build     # build into target/book, then check the log and the HTML
#   bash scripts/book.sh check     # build + static checks + headless-Chromium checks + screenshots
#   bash scripts/book.sh serve     # live preview on http://127.0.0.1:3000 (loopback only)
#   bash scripts/book.sh data      # rewrite the widgets' data (book/data/*.json) with the crate's examples
#   bash scripts/book.sh outputs [NAME…]  # re-run the commands whose output the book quotes (book/listings/NAME.txt)
#   bash scripts/book.sh numbers [FILE…]  # rewrite the prose's annotated numbers (<!--= file#/pointer -->0.41) from the results
#   bash scripts/book.sh selftest  # break copies of the book on purpose: each fault must fail the checks
#   bash scripts/book.sh versions  # print the pinned versions
#
# Environment:
#   LORA_BOOK_CACHE  where the tools go (default ${XDG_CACHE_HOME:-$HOME/.cache}/lora-book);
#                    the binaries live in $LORA_BOOK_CACHE/tools/bin, outside the repository.
#   LORA_BOOK_JOBS   parallel rustc jobs for `install` (default: cargo's own, i.e. all cores;
#                    use 1 when another build is already running on this 2-core machine).
#   BOOK_PORT        port for `serve` (default 3000).
#   BOOK_ROOT        the book to build (default: this repository); `selftest` points it at copies.
#
# Offline assets (no CDN anywhere, the book must read the same without a network):
# - KaTeX: mdbook-katex renders formulas to HTML at build time; `no-css = true` in book.toml
#   stops it from linking KaTeX's stylesheet from a CDN. The stylesheet and its woff2 fonts
#   (~300 KB) are vendored, committed, in book/katex/, from the npm package `katex` at
#   $KATEX_CSS_VERSION below: exactly the KaTeX that mdbook-katex $MDBOOK_KATEX_VERSION renders
#   with (its `katex` crate 0.4.6 embeds KaTeX 0.16.4, see KATEX-VERSION in that crate).
#   They live in the book's source, not in theme/, because mdBook copies only the files it
#   knows from theme/ but copies every non-Markdown file of the source folder as is; the
#   stylesheet's relative `fonts/...` URLs then resolve inside katex/. theme/head.hbs links
#   it. (Linking it through `additional-css` broke the font paths in mdBook 0.5.)
#   `bash scripts/book.sh vendor-katex` re-vendors them (needs npm; only when bumping).
# - Mermaid: mermaid.min.js and mermaid-init.js in theme/ are the output of
#   `mdbook-mermaid install` (moved from the repository root into theme/), committed;
#   book.toml loads them with additional-js.
set -euo pipefail

# ---- pinned versions: the only place they are written ------------------------------------
MDBOOK_VERSION=0.5.4
MDBOOK_KATEX_VERSION=0.10.0
MDBOOK_MERMAID_VERSION=0.17.1
KATEX_CSS_VERSION=0.16.4    # npm `katex` whose CSS/fonts are vendored: = the KaTeX inside mdbook-katex 0.10.0
# ---------------------------------------------------------------------------------------------

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="$(cd "${BOOK_ROOT:-$REPO}" && pwd)"
CACHE="${LORA_BOOK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lora-book}"
TOOLS="$CACHE/tools"
BIN="$TOOLS/bin"
NODE_DIR="$TOOLS/book"            # playwright-core, from tools/book/package-lock.json
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
BUILD_DIR="$ROOT/target/book"
LOG_DIR="$ROOT/target/book-logs"
SHOTS_DIR="$ROOT/target/book-screenshots"

say() { printf '[book] %s\n' "$*" >&2; }
die() { printf '[book] ERROR: %s\n' "$*" >&2; exit 1; }

# installed_version BIN -> prints the version the binary reports, or nothing
installed_version() {
  local exe="$BIN/$1"
  [[ -x "$exe" ]] || return 0
  "$exe" --version 2>/dev/null | grep -Eo '[0-9]+\.[0-9]+\.[0-9]+' | head -n1 || true
}

install_one() {
  local crate="$1" version="$2"
  local have
  have="$(installed_version "$crate")"
  if [[ "$have" == "$version" ]]; then
    say "$crate $version already installed in $BIN"
    return 0
  fi
  say "installing $crate $version into $TOOLS (found: ${have:-none})"
  local jobs=()
  [[ -n "${LORA_BOOK_JOBS:-}" ]] && jobs=(-j "$LORA_BOOK_JOBS")
  cargo install --locked --force "${jobs[@]}" --root "$TOOLS" "$crate@$version"
  have="$(installed_version "$crate")"
  [[ "$have" == "$version" ]] || die "$crate reports version '${have:-?}' after install, expected $version"
}

# Debian's chromium for the browser checks (apt; skipped when already there).
install_chromium() {
  if [[ -x "$CHROMIUM" ]]; then
    say "chromium already installed ($CHROMIUM)"
    return 0
  fi
  command -v apt-get >/dev/null || die "$CHROMIUM not found and no apt-get: install Chromium and set CHROMIUM=/path/to/chromium"
  local sudo=()
  [[ $(id -u) -ne 0 ]] && sudo=(sudo)
  say "installing Debian's chromium (apt-get)"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium ||
    { "${sudo[@]}" apt-get update && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }
  [[ -x "$CHROMIUM" ]] || die "apt-get installed chromium but $CHROMIUM is missing"
}

# playwright-core at the version tools/book/package-lock.json pins, outside the clone. No
# browser download: it drives Debian's chromium (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD, and
# playwright-core has no install script anyway).
node_stamp() { cat "$REPO/tools/book/package.json" "$REPO/tools/book/package-lock.json" | sha256sum | cut -d' ' -f1; }
node_installed() { [[ -f "$NODE_DIR/.installed" && "$(cat "$NODE_DIR/.installed")" == "$(node_stamp)" && -d "$NODE_DIR/node_modules/playwright-core" ]]; }
install_node_tools() {
  command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are needed (Node >= 20)"
  if node_installed; then
    say "playwright-core already installed in $NODE_DIR"
    return 0
  fi
  mkdir -p "$NODE_DIR"
  rm -f "$NODE_DIR/.installed"
  cp "$REPO/tools/book/package.json" "$REPO/tools/book/package-lock.json" "$NODE_DIR/"
  say "installing playwright-core into $NODE_DIR (npm ci)"
  (cd "$NODE_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  local want have
  want="$(node -p 'require(process.argv[1]).packages["node_modules/playwright-core"].version' "$REPO/tools/book/package-lock.json")"
  have="$(node -p 'require(process.argv[1]).version' "$NODE_DIR/node_modules/playwright-core/package.json")"
  [[ "$want" == "$have" ]] || die "playwright-core $have installed, the lock pins $want"
  node_stamp >"$NODE_DIR/.installed"
}

cmd_install() {
  command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"
  mkdir -p "$TOOLS"
  local t0=$SECONDS
  install_one mdbook "$MDBOOK_VERSION"
  install_one mdbook-katex "$MDBOOK_KATEX_VERSION"
  install_one mdbook-mermaid "$MDBOOK_MERMAID_VERSION"
  install_chromium
  install_node_tools
  say "tools ready in $BIN, $NODE_DIR and $CHROMIUM ($((SECONDS - t0)) s)"
}

need_tools() {
  [[ "$(installed_version mdbook)" == "$MDBOOK_VERSION" &&
     "$(installed_version mdbook-katex)" == "$MDBOOK_KATEX_VERSION" &&
     "$(installed_version mdbook-mermaid)" == "$MDBOOK_MERMAID_VERSION" ]] ||
    die "pinned tools missing or at other versions in $BIN: run 'bash scripts/book.sh install'"
  command -v node >/dev/null || die "node not found: the book's checks (tools/book/*.mjs) need Node >= 20"
  # mdbook finds its preprocessors (mdbook-katex, mdbook-mermaid) on PATH.
  export PATH="$BIN:$PATH"
}

# Every {{#include path[:anchor]}} / {{#rustdoc_include ...}} must resolve. mdBook only logs
# a missing file, and says nothing at all about some missing anchors, so check them here.
check_includes() {
  local bad=0 file line spec path anchor target
  while IFS= read -r -d '' file; do
    while IFS= read -r line; do
      spec="${line#*\{\{#}"
      spec="${spec%%\}\}*}"
      spec="$(sed -E 's/^(include|rustdoc_include)[[:space:]]+//; s/[[:space:]]+$//' <<<"$spec")"
      path="${spec%%:*}"
      anchor=""
      [[ "$spec" == *:* ]] && anchor="${spec#*:}"
      target="$(dirname "$file")/$path"
      if [[ ! -f "$target" ]]; then
        say "missing include in ${file#"$ROOT"/}: $path"
        bad=1
        continue
      fi
      # Line ranges (1:5, :10, 3:) need no anchor; anything else is an anchor name.
      if [[ -n "$anchor" && ! "$anchor" =~ ^[0-9]*(:[0-9]*)?$ ]]; then
        if ! grep -Eq "ANCHOR:[[:space:]]*${anchor}\b" "$target" ||
           ! grep -Eq "ANCHOR_END:[[:space:]]*${anchor}\b" "$target"; then
          say "missing anchor '$anchor' in $path (included from ${file#"$ROOT"/})"
          bad=1
        fi
      fi
    done < <(grep -oE '\{\{#(include|rustdoc_include)[[:space:]]+[^}]+\}\}' "$file" || true)
  done < <(find "$ROOT/book" -name '*.md' -print0)
  return "$bad"
}

cmd_build() {
  need_tools
  mkdir -p "$LOG_DIR"
  local log="$LOG_DIR/build.log" status=0
  check_includes || status=1

  say "mdbook $(mdbook --version) building into ${BUILD_DIR#"$ROOT"/}"
  # RUST_LOG=info: mdBook 0.5 prints warnings and errors through its logger.
  set +e
  (cd "$ROOT" && RUST_LOG="${RUST_LOG:-info}" NO_COLOR=1 mdbook build --dest-dir "$BUILD_DIR") >"$log" 2>&1
  local rc=$?
  set -e
  cat "$log" >&2
  if [[ $rc -ne 0 ]]; then
    say "mdbook build exited $rc"
    status=1
  fi
  # mdbook exits 0 on a KaTeX parse error or a missing include: read what it logged.
  # Tolerated, and only these: both preprocessors warn on every run that they were built
  # against another 0.5.x mdbook (mdbook-mermaid 0.17.1: 0.5.0, mdbook-katex 0.10.0: 0.5.3).
  local problems
  problems="$(sed -E 's/\x1b\[[0-9;]*m//g' "$log" |
    grep -niE 'error|warn|rendering failed|parseerror|failed to (read|find|open)|could not find|no such file' |
    grep -vE 'built against (version )?(mdbook )?v?0\.5\.[0-9]+( of mdbook)?, but we(.re| are) being called from (mdbook )?(version )?v?0\.5\.[0-9]+' || true)"
  if [[ -n "$problems" ]]; then
    say "the build log reports problems:"
    printf '%s\n' "$problems" >&2
    status=1
  fi
  if [[ $rc -eq 0 ]]; then
    # Widgets' data as scripts too, for readers who open the HTML straight from disk.
    node "$REPO/tools/book/embed-data.mjs" "$BUILD_DIR" || status=1
    # Every link, #anchor and resource resolves inside the book; nothing is loaded from the
    # network (only <a href> may leave); no katex-error and no unrendered $$ / \( left.
    node "$REPO/tools/book/check-html.mjs" "$BUILD_DIR" || status=1
  fi
  [[ -f "$BUILD_DIR/katex/katex.min.css" ]] || { say "KaTeX stylesheet missing from the build"; status=1; }
  compgen -G "$BUILD_DIR/theme/mermaid*.js" >/dev/null || { say "mermaid.min.js missing from the build"; status=1; }

  if [[ $status -ne 0 ]]; then
    die "book build FAILED (log: ${log#"$ROOT"/})"
  fi
  say "book built and checked: $BUILD_DIR/index.html"
}

# The widgets' data in book/data/ is what the companion crate's examples write; `data`
# rewrites it, `check` makes sure the committed files are exactly what they write now.
DATA_EXAMPLES=(ch01_model_sizes:models.json ch02_low_rank:low_rank.json)
run_data_examples() { # DIR: write every data file into DIR
  local dir="$1" pair examples=()
  # shellcheck source=scripts/env.sh
  source "$REPO/scripts/env.sh"
  for pair in "${DATA_EXAMPLES[@]}"; do examples+=(--example "${pair%%:*}"); done
  (cd "$REPO" && cargo build -q -p lorakit "${examples[@]}") || die "building the data examples failed"
  for pair in "${DATA_EXAMPLES[@]}"; do
    "$CARGO_TARGET_DIR/debug/examples/${pair%%:*}" "$dir/${pair#*:}" >&2 || die "example ${pair%%:*} failed"
  done
}
cmd_data() {
  run_data_examples "$ROOT/book/data"
}
check_data_fresh() {
  local tmp pair bad=0
  tmp="$(mktemp -d)"
  run_data_examples "$tmp"
  for pair in "${DATA_EXAMPLES[@]}"; do
    if ! cmp -s "$tmp/${pair#*:}" "$ROOT/book/data/${pair#*:}"; then
      say "book/data/${pair#*:} differs from what 'cargo run -p lorakit --example ${pair%%:*}' writes now: run 'bash scripts/book.sh data'"
      bad=1
    fi
  done
  rm -rf "$tmp"
  [[ $bad -eq 0 ]] && say "book/data/*.json equal what the examples write"
  return "$bad"
}

# The listing outputs the book quotes: each book/listings/*.txt starts with the command that
# printed it ("$ cargo run -p lorakit --example …", "$ lora …", "$ bash scripts/…"); run it
# again and rewrite the file, showing what changed. tests/book_commands.rs checks them all. (The .md/.json/.toml files there are edited by hand from real runs.)
# The measured numbers quoted in prose, rewritten from the results they are annotated with
# (tests/support/numbers.rs has the syntax; tests/book_numbers.rs checks them).
cmd_numbers() {
  # shellcheck source=scripts/env.sh
  source "$REPO/scripts/env.sh"
  (cd "$ROOT" && cargo run -q -p lora-book --example book-numbers -- "$@")
}

cmd_outputs() {
  local f name cmd tmp changed=0 bin
  # shellcheck source=scripts/env.sh
  source "$REPO/scripts/env.sh"
  # `lora` on the PATH, as the book tells its readers to put it.
  (cd "$REPO" && cargo build -q -p lora-cli --bin lora)
  bin="$(mktemp -d)"
  trap 'rm -rf "$bin"' RETURN
  ln -s "$CARGO_TARGET_DIR/debug/lora" "$bin/lora"
  # `--model ollama:smollm2:135m` as after `ollama pull smollm2:135m` (the store's model is a
  # link to the book's SmolLM2 file); tests/book_commands.rs builds the same store.
  (cd "$REPO" && cargo run -q -p lora-book --example ollama-store -- "$bin/ollama-models")
  export OLLAMA_MODELS="$bin/ollama-models"
  for f in "$ROOT"/book/listings/*.txt; do
    name="$(basename "$f" .txt)"
    if (($#)) && [[ " $* " != *" $name "* ]]; then continue; fi
    cmd="$(head -1 "$f")"
    if [[ $cmd != '$ '* ]]; then say "$name: no command on its first line, left as is"; continue; fi
    say "$name: ${cmd#'$ '}"
    tmp="$(mktemp)"
    # Run as a reader's shell runs it, from the repository root.
    { printf '%s\n' "$cmd"; (cd "$ROOT" && PATH="$bin:$PATH" bash -c "${cmd#'$ '}" 2>/dev/null); } >"$tmp" ||
      { rm -f "$tmp"; die "$name: '${cmd#'$ '}' failed"; }
    # NAME.txt.alt: the same command's output on a CPU of the other vector width (see
    # tests/book_commands.rs); printing it is no change.
    if cmp -s "$tmp" "$f" || { [[ -f "$f.alt" ]] && cmp -s "$tmp" "$f.alt"; }; then
      rm -f "$tmp"
    else
      diff -u "$f" "$tmp" | head -40 >&2 || true
      mv "$tmp" "$f"
      changed=1
    fi
  done
  [[ $changed -eq 0 ]] && say "every listing output is what its command prints now" || say "rewrote the files above: review the diffs"
}

# The built book in headless Chromium: every page, its math, diagrams and widgets; then the
# Part V widgets once more on the fixture data of tools/book/fixtures (a copy of the book,
# so book/data/experiments is never touched).
cmd_browser_check() {
  node_installed || die "playwright-core missing or outdated in $NODE_DIR: run 'bash scripts/book.sh install'"
  [[ -x "$CHROMIUM" ]] || die "$CHROMIUM not found: run 'bash scripts/book.sh install'"
  rm -rf "$SHOTS_DIR"
  LORA_BOOK_NODE_DIR="$NODE_DIR" CHROMIUM="$CHROMIUM" node "$REPO/tools/book/browser-check.mjs" \
    --book "$BUILD_DIR" --source "$ROOT/book" --shots "$SHOTS_DIR" || die "browser check FAILED"
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  cp -r "$BUILD_DIR" "$tmp/book"
  # Only the results files are swapped for the fixtures; the plots stay, so the pages load whole.
  rm -f "$tmp/book/data/experiments/"*.json
  mkdir -p "$tmp/book/data/experiments"
  cp "$REPO/tools/book/fixtures/experiments/"*.json "$tmp/book/data/experiments/"
  node "$REPO/tools/book/embed-data.mjs" "$tmp/book" || die "embed-data failed on the fixture copy"
  say "Part V widgets on the fixture data (tools/book/fixtures/experiments)"
  LORA_BOOK_NODE_DIR="$NODE_DIR" CHROMIUM="$CHROMIUM" node "$REPO/tools/book/browser-check.mjs" \
    --book "$tmp/book" --source "$ROOT/book" --shots "$SHOTS_DIR/fixture" --require-data \
    --pages ch12-00-before-and-after.html,ch13-00-impact-of-rank.html || die "browser check on the fixture data FAILED"
}

cmd_serve() {
  need_tools
  cd "$ROOT"
  exec mdbook serve --hostname 127.0.0.1 --port "${BOOK_PORT:-3000}" --dest-dir "$BUILD_DIR"
}

# Re-vendor KaTeX's stylesheet and woff2 fonts from npm (maintainers only, when bumping).
cmd_vendor_katex() {
  command -v npm >/dev/null || die "npm not found"
  local tmp dest="$ROOT/book/katex"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "katex@$KATEX_CSS_VERSION" >/dev/null && tar xzf katex-*.tgz)
  rm -rf "$dest"
  mkdir -p "$dest/fonts"
  cp "$tmp/package/dist/katex.min.css" "$dest/"
  cp "$tmp/package/dist/fonts/"*.woff2 "$dest/fonts/"
  cp "$tmp/package/LICENSE" "$dest/LICENSE"
  # Only woff2 is shipped: drop the woff/ttf fallbacks from the @font-face rules so the
  # stylesheet references no file that is not there.
  sed -i -E 's/,url\(fonts\/[^)]*\.woff\) format\("woff"\)//g; s/,url\(fonts\/[^)]*\.ttf\) format\("truetype"\)//g' \
    "$dest/katex.min.css"
  printf 'KaTeX %s stylesheet and woff2 fonts, from the npm package `katex` (MIT, see LICENSE).\nRegenerate with: bash scripts/book.sh vendor-katex\n' \
    "$KATEX_CSS_VERSION" >"$dest/README.txt"
  rm -rf "$tmp"
  say "vendored KaTeX $KATEX_CSS_VERSION into ${dest#"$ROOT"/}"
}

case "${1:-}" in
  install) cmd_install ;;
  build) cmd_build ;;
  data) cmd_data ;;
  outputs) shift; cmd_outputs "$@" ;;
  numbers) shift; cmd_numbers "$@" ;;
  check)
    check_data_fresh || die "the widgets' data is stale"
    cmd_build
    cmd_browser_check
    say "book checked: data, build, links, offline, KaTeX, mermaid, widgets; screenshots in ${SHOTS_DIR#"$ROOT"/}" ;;
  browser-check) cmd_browser_check ;;
  selftest) exec bash "$REPO/tools/book/selftest.sh" ;;
  serve) cmd_serve ;;
  vendor-katex) cmd_vendor_katex ;;
  versions)
    printf 'mdbook %s\nmdbook-katex %s\nmdbook-mermaid %s\nkatex (css) %s\n' \
      "$MDBOOK_VERSION" "$MDBOOK_KATEX_VERSION" "$MDBOOK_MERMAID_VERSION" "$KATEX_CSS_VERSION" ;;
  *)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2 ;;
esac
