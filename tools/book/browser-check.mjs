// The built book in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core),
// as a reader sees it. Run by `scripts/book.sh check`:
//
//   LORA_BOOK_NODE_DIR=~/.cache/lora-book/tools/book \
//   node tools/book/browser-check.mjs --book target/book --shots target/book-screenshots \
//        [--pages a.html,b.html] [--require-data] [--source book]
//
// Serves the book from 127.0.0.1 (nothing else is reachable: every other request is aborted
// and reported), opens every page, and fails when
// - the page logs a console error or throws, or a request fails;
// - math is left unrendered ($$, \( or \[ in the text) or the page's Markdown source has
//   math but the page has no .katex element;
// - a ```mermaid block did not become an SVG (or became mermaid's error picture);
// - a widget fails, or shows "no data yet" although its file exists (with --require-data:
//   at all), or does not respond to its controls: the calculator's counts must equal
//   lorakit's for every setting in models.json, the low-rank explorer's error must equal
//   the Rust one at every r, the viewer must page through examples, the curves must follow
//   their checkboxes;
// - a self-check quiz (div.lora-quiz, theme/quiz.js) is not drawn, or does not answer: each
//   question is answered once wrongly and once rightly (the right option read from the
//   page's HTML, not from the script) and the feedback and the score must follow; one
//   question is answered with the keyboard;
// - a chapter page (ch01-… to ch15-…) lacks a "Summary" heading or a quiz of 3 to 5 questions.
// Screenshots of a theory page, a training page and every widget go to --shots.
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const bookDir = path.resolve(opt("--book", "target/book"));
const shotsDir = path.resolve(opt("--shots", "target/book-screenshots"));
const sourceDir = path.resolve(opt("--source", "book"));
const onlyPages = opt("--pages", null);
const requireData = args.includes("--require-data");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";

const nodeDir = process.env.LORA_BOOK_NODE_DIR;
if (!nodeDir) {
  console.error("browser-check: LORA_BOOK_NODE_DIR is not set (run it through scripts/book.sh check)");
  process.exit(2);
}
const { chromium } = createRequire(path.join(nodeDir, "package.json"))("playwright-core");
if (!fs.existsSync(chromiumPath)) {
  console.error(`browser-check: ${chromiumPath} not found: run bash scripts/book.sh install`);
  process.exit(2);
}
fs.mkdirSync(shotsDir, { recursive: true });

// ---- a static server on the loopback interface -------------------------------------------
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".json": "application/json", ".svg": "image/svg+xml", ".png": "image/png", ".woff2": "font/woff2", ".woff": "font/woff", ".ttf": "font/ttf", ".ico": "image/x-icon", ".txt": "text/plain" };
const server = http.createServer((req, res) => {
  const urlPath = decodeURIComponent(new URL(req.url, "http://x").pathname);
  let file = path.join(bookDir, urlPath);
  if (file.startsWith(bookDir) && fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, "index.html");
  if (!file.startsWith(bookDir) || !fs.existsSync(file)) {
    res.writeHead(404, { "content-type": "text/plain" }).end("not found");
    return;
  }
  res.writeHead(200, { "content-type": TYPES[path.extname(file)] || "application/octet-stream" });
  fs.createReadStream(file).pipe(res);
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const origin = `http://127.0.0.1:${server.address().port}`;

// ---- helpers ------------------------------------------------------------------------------
const failures = [];
const fail = (page, msg) => failures.push(`${page}: ${msg}`);
const notes = [];

/** Has the page's Markdown source any math ($…$ or $$…$$ outside code)? */
function sourceHasMath(htmlName) {
  const md = path.join(sourceDir, htmlName.replace(/\.html$/, ".md"));
  if (!fs.existsSync(md)) return null;
  const text = fs.readFileSync(md, "utf8").replace(/```[\s\S]*?```/g, "").replace(/`[^`\n]*`/g, "");
  return /\$\$[\s\S]+?\$\$|\$[^$\s][^$\n]*?\$/.test(text);
}

async function shot(page, file, locator) {
  const out = path.join(shotsDir, file);
  if (locator) {
    // The widget alone: mdBook's sticky menu bar would otherwise cover its top.
    const style = await page.addStyleTag({ content: "#mdbook-menu-bar, .menu-bar { visibility: hidden !important; }" });
    await locator.scrollIntoViewIfNeeded();
    await locator.screenshot({ path: out });
    await style.evaluate((e) => e.remove());
  } else {
    await page.screenshot({ path: out });
  }
  notes.push(`screenshot ${path.relative(process.cwd(), out)}`);
}

// ---- widget interaction tests (in the page) ---------------------------------------------
async function testCalculator(page, name, w, data) {
  // Every (model, r, targets) lorakit counted: the widget must show the same number.
  const result = await w.evaluate((root, models) => {
    const q = (s) => root.querySelector(s);
    const ranks = [1, 2, 4, 8, 16, 32, 64, 128, 256];
    const fire = (e) => e.dispatchEvent(new Event("input", { bubbles: true }));
    const bad = [];
    let n = 0;
    models.forEach((m, mi) => {
      const sel = q('[data-control="model"]');
      sel.value = String(mi);
      fire(sel);
      for (const c of m.checks) {
        const slider = q('[data-control="rank"]');
        slider.value = String(ranks.indexOf(c.r));
        root.querySelectorAll('[data-control="target"]').forEach((cb) => (cb.checked = c.targets.includes(cb.value)));
        fire(slider);
        const shown = Number(q('[data-out="trainable"]').dataset.value);
        n += 1;
        if (shown !== c.trainable_params) bad.push(`${m.id} r=${c.r} ${c.targets}: widget ${shown}, lorakit ${c.trainable_params}`);
      }
    });
    return { n, bad };
  }, data.models);
  for (const b of result.bad) fail(name, `calculator: ${b}`);
  // Responds to input: rank 8 → 16 doubles the count; a target off lowers it.
  const probe = await w.evaluate((root) => {
    const q = (s) => root.querySelector(s);
    const fire = (e) => e.dispatchEvent(new Event("input", { bubbles: true }));
    const read = () => Number(q('[data-out="trainable"]').dataset.value);
    q('[data-control="model"]').value = "0";
    root.querySelectorAll('[data-control="target"]').forEach((cb) => (cb.checked = true));
    const s = q('[data-control="rank"]');
    s.value = "3"; // r = 8
    fire(s);
    const r8 = read();
    s.value = "4"; // r = 16
    fire(s);
    const r16 = read();
    const cb = q('[data-control="target"][value="down_proj"]');
    cb.checked = false;
    fire(cb);
    const noDown = read();
    cb.checked = true;
    s.value = "3";
    fire(s);
    return { r8, r16, noDown };
  });
  if (!(probe.r16 === 2 * probe.r8 && probe.noDown < probe.r16)) fail(name, `calculator does not respond to rank/targets: ${JSON.stringify(probe)}`);
  const m = data.measured_adapter;
  if (m && probe.r8 !== m.trainable_params) fail(name, `calculator shows ${probe.r8} for the default adapter, lorakit's LoraAdapter::init made ${m.trainable_params}`);
  notes.push(`${name}: calculator equals lorakit's count in ${result.n} settings; r 8→16: ${probe.r8}→${probe.r16}`);
  if (!name.startsWith("print.html")) {
    // The second model with a bf16 base, for a look; then back to the default state.
    const set = (model, dtype) =>
      w.evaluate((root, [m, d]) => {
        const fire = (e) => e.dispatchEvent(new Event("input", { bubbles: true }));
        const sel = root.querySelector('[data-control="model"]');
        sel.value = m;
        const base = root.querySelector('[data-control="base-dtype"]');
        base.value = d;
        fire(sel);
        fire(base);
      }, [model, dtype]);
    await set("1", "2");
    await shot(page, "widget-ch01-calculator-llama-bf16.png", w);
    await set("0", "4");
  }
}

async function testLowRank(page, name, w, data) {
  const res = await w.evaluate((root) => {
    const s = root.querySelector('[data-control="rank"]');
    const e = root.querySelector('[data-out="error"]');
    const out = [];
    for (let r = 0; r <= Number(s.max); r++) {
      s.value = String(r);
      s.dispatchEvent(new Event("input", { bubbles: true }));
      out.push({ r, js: Number(e.dataset.value), rust: Number(e.dataset.rust), text: e.textContent });
    }
    s.value = "8";
    s.dispatchEvent(new Event("input", { bubbles: true }));
    return out;
  });
  let worst = 0;
  for (const { r, js, rust } of res) {
    if (rust !== data.errors[r]) fail(name, `low-rank r=${r}: the widget shows the Rust error ${rust}, the file says ${data.errors[r]}`);
    const d = Math.abs(js - rust);
    worst = Math.max(worst, d);
    if (!(d <= 1e-9 * data.frobenius_norm)) fail(name, `low-rank r=${r}: JS error ${js} vs Rust ${rust}`);
  }
  for (let r = 1; r < res.length; r++) if (res[r].js > res[r - 1].js + 1e-12) fail(name, `low-rank: error grows from r=${r - 1} to r=${r}`);
  if (res[8].text === res[16].text) fail(name, "low-rank: the error text does not change with the slider");
  notes.push(`${name}: low-rank error JS = Rust at r = 0..${res.length - 1} (max |diff| ${worst.toExponential(1)}); r=8: ${res[8].js.toFixed(4)}, r=16: ${res[16].js.toFixed(4)}`);
}

async function testBeforeAfter(page, name, w) {
  const res = await w.evaluate((root) => {
    const pos = () => root.querySelector('[data-out="position"]').textContent;
    const body = () => root.querySelector("pre.answer")?.textContent ?? "";
    const a = { pos: pos(), body: body() };
    root.querySelector('[data-control="next"]').click();
    const b = { pos: pos(), body: body() };
    const task = root.querySelector('[data-control="task"]');
    const summaries = [];
    for (let i = 0; i < task.options.length; i++) {
      task.value = String(i);
      task.dispatchEvent(new Event("input", { bubbles: true }));
      summaries.push(root.querySelector('[data-out="summary"]').textContent);
    }
    task.value = "0";
    task.dispatchEvent(new Event("input", { bubbles: true }));
    return { a, b, summaries };
  });
  if (res.a.pos === res.b.pos) fail(name, `before-after: "next" did not move (${res.a.pos})`);
  if (res.summaries.length > 1 && new Set(res.summaries).size < 2) fail(name, "before-after: changing the task did not change the summary");
  notes.push(`${name}: before-after pages ${res.a.pos} → ${res.b.pos}; ${res.summaries.length} tasks`);
}

async function testCurves(page, name, w) {
  const res = await w.evaluate((root) => {
    const svg = root.querySelector("svg.chart");
    const paths = () => Number(svg.dataset.paths);
    const all = paths();
    const first = root.querySelector('[data-control="series"]');
    first.checked = false;
    first.dispatchEvent(new Event("input", { bubbles: true }));
    const without = paths();
    first.checked = true;
    first.dispatchEvent(new Event("input", { bubbles: true }));
    const val = root.querySelector('[data-control="val"]');
    val.checked = false;
    val.dispatchEvent(new Event("input", { bubbles: true }));
    const noVal = paths();
    val.checked = true;
    val.dispatchEvent(new Event("input", { bubbles: true }));
    return { all, without, noVal, polylines: svg.querySelectorAll("polyline").length };
  });
  if (!(res.all > 0 && res.without < res.all && res.noVal < res.all && res.polylines === res.all))
    fail(name, `training-curves do not follow their controls: ${JSON.stringify(res)}`);
  notes.push(`${name}: training-curves ${res.all} lines, ${res.without} without the first series, ${res.noVal} without validation`);
}


// ---- self-check quizzes ---------------------------------------------------------------------
const CHAPTER_PAGE = /^ch(0[1-9]|1[0-5])-\d\d-.*\.html$/;

/** The quizzes as the page's HTML file writes them (before theme/quiz.js ran). */
function quizzesInHtml(page, file) {
  return page.evaluate((html) => {
    const doc = new DOMParser().parseFromString(html, "text/html");
    return [...doc.querySelectorAll("div.lora-quiz")].map((q) => ({
      id: q.dataset.quiz,
      questions: [...q.querySelectorAll(":scope > .quiz-q")].map((qq) => {
        const opts = [...qq.querySelectorAll(".quiz-options > li")];
        return { options: opts.length, correct: opts.map((li, i) => (li.hasAttribute("data-correct") ? i : -1)).filter((i) => i >= 0) };
      }),
    }));
  }, fs.readFileSync(file, "utf8"));
}

async function testQuizzes(page, name) {
  const problems = [];
  const expected = await quizzesInHtml(page, path.join(bookDir, name));
  const live = page.locator("div.lora-quiz");
  if ((await live.count()) !== expected.length) problems.push(`${expected.length} quiz(zes) in the HTML, ${await live.count()} on the page`);
  if (CHAPTER_PAGE.test(name)) {
    const summary = await page.evaluate(() => [...document.querySelectorAll("main h2")].some((h) => h.textContent.trim() === "Summary"));
    if (!summary) problems.push('no "## Summary" heading');
    if (expected.length !== 1) problems.push(`${expected.length} quizzes, a chapter page has exactly one`);
    else if (expected[0].questions.length < 3 || expected[0].questions.length > 5)
      problems.push(`quiz ${expected[0].id} has ${expected[0].questions.length} questions, needs 3 to 5`);
  }
  let questions = 0;
  for (let i = 0; i < expected.length; i++) {
    const want = expected[i];
    const w = live.nth(i);
    await page.waitForFunction((el) => ["ready", "error"].includes(el.dataset.state), await w.elementHandle(), { timeout: 10000 }).catch(() => {});
    const state = await w.getAttribute("data-state");
    if (state !== "ready") {
      problems.push(`quiz ${want.id}: not drawn (state ${state}): ${(await w.innerText()).split("\n")[0]}`);
      continue;
    }
    want.questions.forEach((q, qi) => {
      if (q.correct.length !== 1) problems.push(`quiz ${want.id} question ${qi + 1}: the markup marks ${q.correct.length} correct options`);
    });
    // Each question: a wrong option, then the right one; the feedback and the score follow.
    const res = await w.evaluate((root, want) => {
      const bad = [];
      const fsets = [...root.querySelectorAll("fieldset.quiz-question")];
      const score = root.querySelector(".quiz-score");
      const right = () => Number(score.dataset.right);
      if (fsets.length !== want.questions.length) bad.push(`${fsets.length} questions drawn, the HTML has ${want.questions.length}`);
      const resetButton = root.querySelector("button.quiz-reset");
      if (!score || !resetButton) {
        bad.push(`no ${score ? "" : "score (.quiz-score) "}${resetButton ? "" : '"Start again" button'}`);
        return { bad, final: null, reset: null };
      }
      fsets.forEach((fs, qi) => {
        const q = want.questions[qi];
        if (!q) return;
        const radios = [...fs.querySelectorAll('input[type="radio"]')];
        const fb = fs.querySelector(".quiz-feedback");
        if (radios.length !== q.options) bad.push(`question ${qi + 1}: ${radios.length} options drawn, the HTML has ${q.options}`);
        if (radios.some((r) => !r.labels || r.labels.length !== 1 || !r.labels[0].textContent.trim()))
          bad.push(`question ${qi + 1}: an option without a label`);
        if (!fs.querySelector("legend")?.textContent.trim()) bad.push(`question ${qi + 1}: no legend`);
        if (radios.length < 2 || q.correct.length !== 1) return;
        const before = right();
        const wrong = radios.findIndex((_, i) => i !== q.correct[0]);
        radios[wrong].click();
        if (fb.dataset.result !== "wrong" || !/^Not quite\./.test(fb.textContent) || fb.textContent.length < 20)
          bad.push(`question ${qi + 1}: option ${wrong + 1} is wrong, the feedback says "${fb.textContent}" (${fb.dataset.result})`);
        if (right() !== before) bad.push(`question ${qi + 1}: a wrong answer changed the score ${before} -> ${right()}`);
        radios[q.correct[0]].click();
        if (fb.dataset.result !== "right" || !/^Right\./.test(fb.textContent))
          bad.push(`question ${qi + 1}: option ${q.correct[0] + 1} is right, the feedback says "${fb.textContent}" (${fb.dataset.result})`);
        if (right() !== before + 1) bad.push(`question ${qi + 1}: the right answer left the score at ${right()} (was ${before})`);
      });
      const final = { right: right(), answered: Number(score.dataset.answered), text: score.textContent };
      resetButton.click();
      const reset = { right: right(), answered: Number(score.dataset.answered), checked: root.querySelectorAll("input:checked").length };
      return { bad, final, reset };
    }, want);
    for (const b of res.bad) problems.push(`quiz ${want.id}: ${b}`);
    const n = want.questions.length;
    if (!res.final) continue;
    if (res.bad.length === 0) questions += n;
    if (res.final.right !== n || res.final.answered !== n) problems.push(`quiz ${want.id}: all answered right, the score says "${res.final.text}"`);
    if (res.reset.right !== 0 || res.reset.answered !== 0 || res.reset.checked !== 0) problems.push(`quiz ${want.id}: "Start again" left ${JSON.stringify(res.reset)}`);
    // The keyboard: Space answers the focused option, ArrowDown moves to the next and answers it.
    if (name !== "print.html" && i === 0 && res.bad.length === 0) {
      const first = w.locator('fieldset.quiz-question input[type="radio"]').first();
      await first.focus();
      await page.keyboard.press("Space");
      await page.keyboard.press("ArrowDown");
      const kb = await w.evaluate((root) => ({
        checked: [...root.querySelectorAll("fieldset.quiz-question")[0].querySelectorAll("input")].findIndex((r) => r.checked),
        result: root.querySelector(".quiz-feedback").dataset.result,
      }));
      const want1 = want.questions[0].correct[0] === 1 ? "right" : "wrong";
      if (kb.checked !== 1 || kb.result !== want1) problems.push(`quiz ${want.id}: Space then ArrowDown should answer option 2 (${want1}), got ${JSON.stringify(kb)}`);
      if (name === "ch04-00-benefits.html") {
        await shot(page, "quiz-ch04-light.png", w);
        // The dark theme as a reader picks it (mdBook keeps the choice in localStorage).
        const dark = await context.newPage();
        await dark.addInitScript(() => localStorage.setItem("mdbook-theme", "coal"));
        await dark.goto(`${origin}/${name}`, { waitUntil: "load" });
        const dw = dark.locator("div.lora-quiz").first();
        await dw.locator('input[type="radio"]').first().check();
        await shot(dark, "quiz-ch04-coal.png", dw);
        await dark.evaluate(() => localStorage.removeItem("mdbook-theme"));
        await dark.close();
      }
      await w.locator("button.quiz-reset").click();
    }
  }
  if (expected.length) notes.push(`${name}: ${expected.length} quiz(zes), ${questions} questions answered wrongly then rightly`);
  return problems;
}

const TESTS = { "lora-calculator": testCalculator, "low-rank": testLowRank, "before-after": testBeforeAfter, "training-curves": testCurves };

// ---- the pages ----------------------------------------------------------------------------
const browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox", "--disable-gpu"] });
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const offsite = [];
await context.route("**/*", (route) => {
  const u = route.request().url();
  if (u.startsWith(origin + "/") || u.startsWith("file:") || u.startsWith("data:")) return route.continue();
  offsite.push(u);
  return route.abort();
});

const pages = (onlyPages ? onlyPages.split(",") : fs.readdirSync(bookDir).filter((f) => f.endsWith(".html"))).sort();
let widgetCount = 0;
for (const name of pages) {
  const page = await context.newPage();
  const problems = [];
  const notFound = [];
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    // A 404 for a widget's data file is expected while it does not exist; judged below.
    if (/^Failed to load resource/.test(m.text()) && notFound.some((u) => u === m.location().url)) return;
    problems.push(`console error: ${m.text()} (${m.location().url})`);
  });
  page.on("pageerror", (e) => problems.push(`uncaught: ${e.message}`));
  page.on("requestfailed", (r) => {
    if (!offsite.includes(r.url())) problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`);
  });
  page.on("response", (r) => {
    if (r.status() >= 400) {
      if (r.status() === 404 && /\/data\/.*\.json$/.test(r.url())) notFound.push(r.url());
      else problems.push(`HTTP ${r.status()} for ${r.url()}`);
    }
  });
  await page.goto(`${origin}/${name}`, { waitUntil: "load" });

  // Mermaid renders after load.
  const mermaid = await page
    .waitForFunction(() => [...document.querySelectorAll("pre.mermaid")].every((p) => p.querySelector("svg")), null, { timeout: 20000 })
    .then(() => null)
    .catch(() => "timed out");
  const facts = await page.evaluate(() => {
    const main = document.querySelector("main") || document.body;
    const clone = main.cloneNode(true);
    clone.querySelectorAll("pre, code, script, style, .katex").forEach((e) => e.remove());
    const text = clone.textContent;
    const blocks = [...document.querySelectorAll("pre.mermaid")];
    return {
      raw: (text.match(/\$\$|\\\(|\\\[/) || [null])[0],
      katex: document.querySelectorAll(".katex").length,
      katexErrors: document.querySelectorAll(".katex-error").length,
      mermaid: blocks.length,
      mermaidSvg: blocks.filter((p) => p.querySelector("svg")).length,
      mermaidErrors: blocks.filter((p) => p.querySelector('svg[aria-roledescription="error"]') || /Syntax error/.test(p.textContent)).length,
      title: document.title,
    };
  });
  if (facts.raw) problems.push(`unrendered math: "${facts.raw}" left in the text`);
  if (facts.katexErrors) problems.push(`${facts.katexErrors} KaTeX error(s)`);
  if (sourceHasMath(name) && facts.katex === 0) problems.push("the Markdown has math but the page has no KaTeX output");
  if (mermaid || facts.mermaidSvg !== facts.mermaid) problems.push(`${facts.mermaid - facts.mermaidSvg} of ${facts.mermaid} mermaid block(s) did not become SVG`);
  if (facts.mermaidErrors) problems.push(`${facts.mermaidErrors} mermaid block(s) rendered as an error`);

  // Widgets: wait until each settled, then work its controls.
  const widgets = page.locator("div.lora-widget[data-widget]");
  const n = await widgets.count();
  for (let i = 0; i < n; i++) {
    const w = widgets.nth(i);
    widgetCount += 1;
    await page.waitForFunction((el) => ["ready", "missing", "error"].includes(el.dataset.state), await w.elementHandle(), { timeout: 15000 }).catch(() => {});
    const { kind, state, src } = await w.evaluate((el) => ({ kind: el.dataset.widget, state: el.dataset.state, src: el.dataset.src }));
    const file = path.join(bookDir, src);
    const label = `${name} ${kind} (${src})`;
    if (state === "missing") {
      if (fs.existsSync(file) || requireData) problems.push(`${kind}: shows "no data yet" but ${src} ${fs.existsSync(file) ? "exists" : "is required here"}`);
      else notes.push(`${label}: no data yet (the file does not exist), message shown`);
      if (name !== "print.html") await shot(page, `widget-${path.basename(name, ".html")}-${kind}-${i}-no-data.png`, w);
      continue;
    }
    if (state !== "ready") {
      problems.push(`${kind}: state ${state}: ${await w.innerText()}`);
      continue;
    }
    const data = JSON.parse(fs.readFileSync(file, "utf8"));
    await TESTS[kind](page, label, w, data);
    if (name !== "print.html") await shot(page, `widget-${path.basename(name, ".html")}-${kind}-${i}.png`, w);
  }

  problems.push(...(await testQuizzes(page, name).catch((e) => [`quiz check threw: ${e.message.split("\n")[0]}`])));

  // A theory page and a training page, as the reader sees them.
  if (name === "ch02-00-the-math-of-lora.html") {
    await page.locator("#the-forward-pass").scrollIntoViewIfNeeded();
    await page.evaluate(() => document.querySelector("#the-forward-pass").scrollIntoView());
    await shot(page, "page-theory-ch02-forward-pass.png");
    await page.evaluate(() => document.querySelector("#rslora-α--r, #rslora-alpha--r, h3[id^='rslora']")?.scrollIntoView());
    await shot(page, "page-theory-ch02-rslora.png");
  }
  if (name === "ch08-00-the-training-step.html") await shot(page, "page-training-ch08.png");
  if (name === "ch03-00-lora-in-a-llama-block.html") {
    await page.evaluate(() => document.querySelector("pre.mermaid")?.scrollIntoView());
    await shot(page, "page-theory-ch03-diagram.png");
  }

  for (const p of problems) fail(name, p);
  console.error(`  ${problems.length ? "FAIL" : "ok  "} ${name}: ${facts.katex} formulas, ${facts.mermaidSvg}/${facts.mermaid} diagrams, ${n} widget(s)`);
  await page.close();
}

// Opened straight from disk (file://), the Part I widgets must still read their data.
if (!onlyPages) {
  const page = await context.newPage();
  const errs = [];
  page.on("pageerror", (e) => errs.push(e.message));
  for (const [file, kind] of [["ch01-00-full-fine-tuning-vs-lora.html", "lora-calculator"], ["ch02-00-the-math-of-lora.html", "low-rank"]]) {
    await page.goto(pathToFileURL(path.join(bookDir, file)).href, { waitUntil: "load" });
    const w = page.locator(`div.lora-widget[data-widget="${kind}"]`);
    await page.waitForFunction((el) => ["ready", "missing", "error"].includes(el.dataset.state), await w.elementHandle(), { timeout: 15000 }).catch(() => {});
    const state = await w.getAttribute("data-state");
    if (state !== "ready") fail(`file://${file}`, `${kind} is "${state}" when the book is opened from disk`);
    else notes.push(`file://${file}: ${kind} reads its data from disk`);
  }
  await page.goto(pathToFileURL(path.join(bookDir, "ch04-00-benefits.html")).href, { waitUntil: "load" });
  const quiz = await page.locator("div.lora-quiz").first().getAttribute("data-state");
  if (quiz !== "ready") fail("file://ch04-00-benefits.html", `the quiz is "${quiz}" when the book is opened from disk`);
  else notes.push("file://ch04-00-benefits.html: the quiz is drawn from disk");
  for (const e of errs) fail("file://", e);
  await page.close();
}

await browser.close();
server.close();
for (const u of offsite) failures.push(`request to outside the book: ${u}`);
for (const n of notes) console.error(`  ${n}`);
if (failures.length) {
  console.error(`browser-check: ${failures.length} problem(s):`);
  for (const f of failures) console.error("  " + f);
  process.exit(1);
}
console.error(`browser-check: ${pages.length} pages and ${widgetCount} widgets OK in ${chromiumPath}; screenshots in ${path.relative(process.cwd(), shotsDir)}`);
