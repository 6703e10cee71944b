// Browsers refuse fetch() on file:// pages, so a book opened straight from disk could not
// read its widgets' data. For every data/**/*.json of the built book this writes
// FILE.json.js, which sets window.LORA_BOOK_DATA["data/…/FILE.json"]; book/widgets/widgets.js
// loads it with a <script> tag on file:// pages (and uses fetch over http).
//
//   node tools/book/embed-data.mjs target/book
import fs from "node:fs";
import path from "node:path";

const root = path.resolve(process.argv[2] || "target/book");
const dataDir = path.join(root, "data");
let n = 0;
function walk(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith(".json")) {
      let value;
      try {
        value = JSON.parse(fs.readFileSync(p, "utf8"));
      } catch (err) {
        console.error(`embed-data: ${path.relative(process.cwd(), p)} is not valid JSON: ${err.message}`);
        process.exit(1);
      }
      const key = path.relative(root, p).split(path.sep).join("/");
      const js = `(window.LORA_BOOK_DATA = window.LORA_BOOK_DATA || {})[${JSON.stringify(key)}] = ${JSON.stringify(value)};\n`;
      fs.writeFileSync(p + ".js", js);
      n += 1;
    }
  }
}
if (fs.existsSync(dataDir)) walk(dataDir);
console.error(`embed-data: ${n} data file(s) also written as scripts for file:// reading`);
