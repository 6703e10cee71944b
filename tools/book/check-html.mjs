// Static checks of the built book (no dependencies; run by `scripts/book.sh build`):
//
//   node tools/book/check-html.mjs target/book
//
// Fails (exit 1, one line per problem) when
// - a link or resource inside the book points to a file that is not there, or to an
//   #anchor that no element of the target page carries (mdBook checks neither);
// - the page would load something from the network: only <a href> may point outside the
//   book (links a reader follows, e.g. to papers); scripts, stylesheets, fonts, images,
//   frames and CSS url()s must all be local;
// - KaTeX could not render a formula (mdbook-katex leaves a .katex-error span, or the raw
//   $$ … $$ / \( … \) source) .
import fs from "node:fs";
import path from "node:path";

const root = path.resolve(process.argv[2] || "target/book");
if (!fs.existsSync(path.join(root, "index.html"))) {
  console.error(`check-html: ${root}/index.html not found: build the book first`);
  process.exit(2);
}

const problems = [];
const counts = { local: 0, anchors: 0, external: 0 };
const report = (file, msg) => problems.push(`${path.relative(process.cwd(), file)}: ${msg}`);

function walk(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : [p];
  });
}
const files = walk(root);
const htmlFiles = files.filter((f) => f.endsWith(".html"));
const cssFiles = files.filter((f) => f.endsWith(".css"));

// Element ids and names of each page, read on demand.
const idCache = new Map();
function idsOf(file) {
  if (!idCache.has(file)) {
    const html = stripNonMarkup(fs.readFileSync(file, "utf8"));
    const ids = new Set();
    for (const m of html.matchAll(/\s(?:id|name)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) ids.add(decodeEntities(m[1] ?? m[2]));
    idCache.set(file, ids);
  }
  return idCache.get(file);
}

function decodeEntities(s) {
  return s.replace(/&(amp|lt|gt|quot|#39|#x27);/g, (_, e) => ({ amp: "&", lt: "<", gt: ">", quot: '"', "#39": "'", "#x27": "'" })[e]);
}

// Comments, and the bodies of scripts and styles (their text is not markup).
function stripNonMarkup(html) {
  return html
    .replace(/<!--[\s\S]*?-->/g, "")
    .replace(/(<script\b[^>]*>)[\s\S]*?<\/script>/gi, "$1</script>")
    .replace(/(<style\b[^>]*>)[\s\S]*?<\/style>/gi, "$1</style>");
}

const isExternal = (u) => /^(https?:)?\/\//i.test(u);
const isSkipped = (u) => /^(mailto:|tel:|javascript:|data:)/i.test(u) || u === "";

// A reference from `file` to `url`: the target must exist, and so must its #anchor.
function checkLocal(file, url, what) {
  counts.local += 1;
  let [p, frag] = url.split("#", 2);
  p = p.split("?")[0];
  let target = file;
  if (p !== "") {
    try {
      p = decodeURIComponent(p);
    } catch {
      return report(file, `${what} ${url}: not a valid URL`);
    }
    target = p.startsWith("/") ? path.join(root, p) : path.resolve(path.dirname(file), p);
    if (!target.startsWith(root)) return report(file, `${what} ${url} points outside the book`);
    if (fs.existsSync(target) && fs.statSync(target).isDirectory()) target = path.join(target, "index.html");
    if (!fs.existsSync(target)) return report(file, `broken ${what} ${url}: ${path.relative(root, target)} does not exist`);
  }
  if (frag && target.endsWith(".html")) {
    counts.anchors += 1;
    let id = frag;
    try {
      id = decodeURIComponent(frag);
    } catch {}
    if (!idsOf(target).has(id)) report(file, `broken ${what} ${url}: no element with id "${id}" in ${path.relative(root, target)}`);
  }
}

// Which attribute of which element references what. <a href> may leave the book.
const REF_ATTRS = { href: ["a", "link", "area", "base"], src: ["script", "img", "iframe", "source", "audio", "video", "embed", "track", "input"], data: ["object"], poster: ["video"] };

for (const file of htmlFiles) {
  const raw = fs.readFileSync(file, "utf8");
  const html = stripNonMarkup(raw);
  for (const tag of html.matchAll(/<([a-zA-Z][a-zA-Z0-9-]*)\b((?:[^>"']|"[^"]*"|'[^']*')*)>/g)) {
    const name = tag[1].toLowerCase();
    for (const a of tag[2].matchAll(/([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))/g)) {
      const attr = a[1].toLowerCase();
      const value = decodeEntities((a[2] ?? a[3] ?? a[4]).trim());
      if (attr === "srcset") {
        for (const part of value.split(",")) {
          const u = part.trim().split(/\s+/)[0];
          if (isExternal(u)) report(file, `<${name} srcset> loads ${u} from the network`);
          else if (!isSkipped(u)) checkLocal(file, u, `<${name} srcset>`);
        }
        continue;
      }
      if (attr === "style" && /url\(/i.test(value)) checkCssUrls(file, value);
      if (!(attr in REF_ATTRS) || !REF_ATTRS[attr].includes(name)) continue;
      if (isSkipped(value)) continue;
      if (isExternal(value)) {
        counts.external += 1;
        if (!(name === "a" && attr === "href")) report(file, `<${name} ${attr}="${value}"> loads from the network (no CDN: vendor it into the book)`);
        continue;
      }
      checkLocal(file, value, `<${name} ${attr}>`);
    }
  }
  // KaTeX failures: an error span, or math delimiters left in the text (code excluded).
  if (/class="[^"]*\bkatex-error\b/.test(raw)) report(file, "KaTeX could not render a formula (katex-error)");
  const text = html
    .replace(/<(pre|code)\b[\s\S]*?<\/\1>/gi, "")
    .replace(/<[^>]+>/g, " ");
  const raw$$ = text.match(/\$\$[\s\S]{0,60}/);
  if (raw$$) report(file, `unrendered math left in the page: ${JSON.stringify(raw$$[0])}`);
  const rawParen = text.match(/\\\(|\\\[/);
  if (rawParen) report(file, `unrendered math delimiter ${rawParen[0]} left in the page`);
}

function checkCssUrls(file, css) {
  for (const m of css.matchAll(/url\(\s*(?:"([^"]*)"|'([^']*)'|([^)]*))\s*\)/gi)) {
    const u = (m[1] ?? m[2] ?? m[3]).trim();
    if (isSkipped(u) || u.startsWith("#")) continue;
    if (isExternal(u)) report(file, `CSS url(${u}) loads from the network`);
    else checkLocal(file, u, "CSS url()");
  }
  for (const m of css.matchAll(/@import\s+(?:url\()?\s*["']?([^"')\s;]+)/gi)) {
    if (isExternal(m[1])) report(file, `CSS @import ${m[1]} loads from the network`);
    else checkLocal(file, m[1], "CSS @import");
  }
}
for (const file of cssFiles) checkCssUrls(file, fs.readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, ""));

if (problems.length) {
  console.error(`check-html: ${problems.length} problem(s) in ${path.relative(process.cwd(), root)}:`);
  for (const p of problems) console.error("  " + p);
  process.exit(1);
}
console.error(
  `check-html: ${htmlFiles.length} pages, ${cssFiles.length} stylesheets: ${counts.local} local references (${counts.anchors} with #anchors) resolve, ` +
    `${counts.external} links leave the book (all <a href>), no unrendered math`,
);
