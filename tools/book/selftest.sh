#!/usr/bin/env bash
# The book's checks must catch what they claim to catch: build a copy of the book with one
# deliberate fault at a time and expect `scripts/book.sh build` (or the browser check) to fail
# with the matching message. An unbroken copy must pass. Run: bash scripts/book.sh selftest
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${LORA_BOOK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lora-book}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
pass=0
failed=()

# A fresh copy of the book's sources (chapters-code is linked: listings include from it).
fresh() {
  rm -rf "$WORK/b"
  mkdir -p "$WORK/b"
  cp -r "$REPO/book.toml" "$REPO/book" "$REPO/theme" "$WORK/b/"
  ln -s "$REPO/chapters-code" "$WORK/b/chapters-code"
}

# expect_build_failure NAME PATTERN: the build of the broken copy must fail, saying PATTERN.
expect_build_failure() {
  local name="$1" pattern="$2" out rc=0
  out="$(BOOK_ROOT="$WORK/b" bash "$REPO/scripts/book.sh" build 2>&1)" || rc=$?
  if [[ $rc -ne 0 ]] && grep -Eq -- "$pattern" <<<"$out"; then
    echo "  ok   $name: build failed with: $(grep -Em1 -- "$pattern" <<<"$out" | sed -E 's/^ +//' | cut -c1-150)"
    pass=$((pass + 1))
  else
    echo "  FAIL $name: expected a failed build mentioning /$pattern/, got exit $rc:"
    tail -n 15 <<<"$out" | sed 's/^/         /'
    failed+=("$name")
  fi
}

# expect_browser_failure NAME PAGE PATTERN: the build passes, the browser check must not.
expect_browser_failure() {
  local name="$1" page="$2" pattern="$3" out rc=0
  if ! out="$(BOOK_ROOT="$WORK/b" bash "$REPO/scripts/book.sh" build 2>&1)"; then
    echo "  FAIL $name: the build itself failed"; tail -n 5 <<<"$out"; failed+=("$name"); return
  fi
  out="$(LORA_BOOK_NODE_DIR="$CACHE/tools/book" node "$REPO/tools/book/browser-check.mjs" --book "$WORK/b/target/book" \
    --source "$WORK/b/book" --shots "$WORK/shots" --pages "$page" 2>&1)" || rc=$?
  if [[ $rc -ne 0 ]] && grep -Eq -- "$pattern" <<<"$out"; then
    echo "  ok   $name: browser check failed with: $(grep -Em1 -- "$pattern" <<<"$out" | sed -E 's/^ +//' | cut -c1-150)"
    pass=$((pass + 1))
  else
    echo "  FAIL $name: expected the browser check to fail mentioning /$pattern/, got exit $rc:"
    tail -n 15 <<<"$out" | sed 's/^/         /'
    failed+=("$name")
  fi
}

CH="$WORK/b/book/ch04-00-benefits.md"
echo "book selftest: each deliberate fault must fail the checks"

fresh
if BOOK_ROOT="$WORK/b" bash "$REPO/scripts/book.sh" build >"$WORK/control.log" 2>&1; then
  echo "  ok   control: the unbroken copy builds and passes"
  pass=$((pass + 1))
else
  echo "  FAIL control: the unbroken copy does not pass:"; tail -n 20 "$WORK/control.log"; failed+=(control)
fi

fresh; printf '\n{{#include ../chapters-code/examples/no_such_listing.rs}}\n' >>"$CH"
expect_build_failure "missing include file" "missing include .*no_such_listing\.rs"

fresh; printf '\n```rust\n{{#rustdoc_include ../chapters-code/examples/ch01_model_sizes.rs:no_such_anchor}}\n```\n' >>"$CH"
expect_build_failure "missing include anchor" "missing anchor 'no_such_anchor'"

fresh; printf '\nA formula KaTeX cannot parse:\n\n$$\n\\frac{1}{\n$$\n' >>"$CH"
expect_build_failure "KaTeX parse error" "KaTeX parse error|unrendered math"

fresh; printf '\nSee [a chapter that is not there](ch99-00-nowhere.md).\n' >>"$CH"
expect_build_failure "broken link to a page" "broken <a href> ch99-00-nowhere\.html"

fresh; printf '\nSee [a heading that is not there](ch02-00-the-math-of-lora.md#no-such-heading).\n' >>"$CH"
expect_build_failure "broken link to an anchor" 'no element with id "no-such-heading"'

fresh; printf '\n![a picture that is not there](img/missing.png)\n' >>"$CH"
expect_build_failure "missing image" "broken <img src> img/missing\.png"

fresh; printf '\n<script src="https://cdn.jsdelivr.net/npm/mermaid@11/dist/mermaid.min.js"></script>\n' >>"$CH"
expect_build_failure "script from a CDN" '<script src="https://cdn\.jsdelivr\.net.*loads from the network'

fresh; printf '<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/katex@0.16.4/dist/katex.min.css">\n' >>"$WORK/b/theme/head.hbs"
expect_build_failure "stylesheet from a CDN (theme)" '<link href="https://cdn\.jsdelivr\.net.*loads from the network'

fresh; printf '\n<div style="background: url(https://example.org/bg.png)">x</div>\n' >>"$CH"
expect_build_failure "CSS url() from the network" "CSS url\(https://example\.org/bg\.png\) loads from the network"

fresh; printf -- '- [Gone](ch98-00-gone.md)\n' >>"$WORK/b/book/SUMMARY.md"
expect_build_failure "SUMMARY entry without a file (mdBook error)" "mdbook build exited|ERROR"

fresh; printf '\n```mermaid\nflowchart LR\n    A --> B -->\n```\n' >>"$CH"
expect_browser_failure "mermaid syntax error" ch04-00-benefits.html "mermaid block"

fresh; printf '{"models": [' >"$WORK/b/book/data/models.json"
expect_build_failure "widget data that is not JSON" "models\.json is not valid JSON"

fresh; sed -i 's/data-src="data\/models.json"/data-src="data\/models.json" data-widget-typo/; s/data-widget="lora-calculator"/data-widget="lora-calculater"/' \
  "$WORK/b/book/ch01-00-full-fine-tuning-vs-lora.md"
expect_browser_failure "unknown widget" ch01-00-full-fine-tuning-vs-lora.html "unknown widget"

fresh; python3 - "$WORK/b/book/data/low_rank.json" <<'PY'
import json, sys
p = sys.argv[1]; d = json.load(open(p))
d["errors"][8] *= 1.001  # the Rust error no longer matches what the factors give
json.dump(d, open(p, "w"))
PY
expect_browser_failure "low-rank errors that do not match the factors" ch02-00-the-math-of-lora.html "low-rank r=8: JS error"

fresh; python3 - "$WORK/b/book/data/models.json" <<'PY'
import json, sys
p = sys.argv[1]; d = json.load(open(p))
d["models"][0]["checks"][5]["trainable_params"] += 1  # lorakit "says" something else
json.dump(d, open(p, "w"))
PY
expect_browser_failure "calculator that disagrees with lorakit" ch01-00-full-fine-tuning-vs-lora.html "calculator: smollm2-135m"

fresh; sed -i '0,/<li data-correct>/s//<li>/' "$CH"
expect_browser_failure "quiz question without a correct option" ch04-00-benefits.html "quiz ch04: not drawn .*question 1 has 0 correct options"

fresh; printf 'document.querySelectorAll("div.lora-quiz").forEach((q) => (q.dataset.state = "ready"));\n' >"$WORK/b/theme/quiz.js"
expect_browser_failure "quiz script that draws nothing" ch04-00-benefits.html "quiz ch04: 0 questions drawn"

fresh; sed -i 's/^## Summary$/## In short/' "$WORK/b/book/ch09-00-evaluating.md"
expect_browser_failure "chapter page without a summary" ch09-00-evaluating.html 'ch09-00-evaluating\.html: no "## Summary" heading'

echo "book selftest: $pass passed, ${#failed[@]} failed${failed:+: ${failed[*]}}"
[[ ${#failed[@]} -eq 0 ]]
