#!/usr/bin/env bash
# The book's toolchain, in one place: install the pinned tools, build the book (and fail on
# the problems mdBook itself only logs), serve it locally.
#
#   bash scripts/book.sh install   # cargo-install the pinned mdbook + preprocessors (idempotent)
#   bash scripts/book.sh build     # build into target/book, then check the log and the HTML
#   bash scripts/book.sh serve     # live preview on http://127.0.0.1:3000 (loopback only)
#   bash scripts/book.sh versions  # print the pinned versions
#
# Environment:
#   LORA_BOOK_CACHE  where the tools go (default ${XDG_CACHE_HOME:-$HOME/.cache}/lora-book);
#                    the binaries live in $LORA_BOOK_CACHE/tools/bin, outside the repository.
#   LORA_BOOK_JOBS   parallel rustc jobs for `install` (default: cargo's own, i.e. all cores;
#                    use 1 when another build is already running on this 2-core machine).
#   BOOK_PORT        port for `serve` (default 3000).
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

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${LORA_BOOK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lora-book}"
TOOLS="$CACHE/tools"
BIN="$TOOLS/bin"
BUILD_DIR="$ROOT/target/book"
LOG_DIR="$ROOT/target/book-logs"

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

cmd_install() {
  command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"
  mkdir -p "$TOOLS"
  local t0=$SECONDS
  install_one mdbook "$MDBOOK_VERSION"
  install_one mdbook-katex "$MDBOOK_KATEX_VERSION"
  install_one mdbook-mermaid "$MDBOOK_MERMAID_VERSION"
  say "tools ready in $BIN ($((SECONDS - t0)) s)"
}

need_tools() {
  [[ "$(installed_version mdbook)" == "$MDBOOK_VERSION" &&
     "$(installed_version mdbook-katex)" == "$MDBOOK_KATEX_VERSION" &&
     "$(installed_version mdbook-mermaid)" == "$MDBOOK_MERMAID_VERSION" ]] ||
    die "pinned tools missing or at other versions in $BIN: run 'bash scripts/book.sh install'"
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

# The built HTML must load nothing from the network: no http(s) script, stylesheet or font.
check_offline_html() {
  local hits
  hits="$(grep -rEno \
      -e '<script[^>]*src="(https?:)?//[^"]*"' \
      -e '<link[^>]*href="(https?:)?//[^"]*"' \
      -e '@import[^;]*(https?:)?//[^;]*' \
      -e 'url\((["'"'"']?)(https?:)?//[^)]*\)' \
      --include='*.html' --include='*.css' "$BUILD_DIR" 2>/dev/null |
      grep -Ev 'http://www\.w3\.org/' || true)"
  if [[ -n "$hits" ]]; then
    say "the built book loads assets from the network (no CDN allowed):"
    printf '%s\n' "$hits" | head -n 20 >&2
    return 1
  fi
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
  # Raw, unrendered math left in the pages means KaTeX gave up on it.
  if grep -rlE 'class="katex-error"' --include='*.html' "$BUILD_DIR" >/dev/null 2>&1; then
    say "KaTeX errors in: $(grep -rlE 'class="katex-error"' --include='*.html' "$BUILD_DIR" | tr '\n' ' ')"
    status=1
  fi
  check_offline_html || status=1
  [[ -f "$BUILD_DIR/katex/katex.min.css" ]] || { say "KaTeX stylesheet missing from the build"; status=1; }
  compgen -G "$BUILD_DIR/theme/mermaid*.js" >/dev/null || { say "mermaid.min.js missing from the build"; status=1; }

  if [[ $status -ne 0 ]]; then
    die "book build FAILED (log: ${log#"$ROOT"/})"
  fi
  say "book built and checked: $BUILD_DIR/index.html"
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
  serve) cmd_serve ;;
  vendor-katex) cmd_vendor_katex ;;
  versions)
    printf 'mdbook %s\nmdbook-katex %s\nmdbook-mermaid %s\nkatex (css) %s\n' \
      "$MDBOOK_VERSION" "$MDBOOK_KATEX_VERSION" "$MDBOOK_MERMAID_VERSION" "$KATEX_CSS_VERSION" ;;
  *)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2 ;;
esac
