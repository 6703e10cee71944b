// The book's interactive widgets, in plain JavaScript (no library, no network).
//
// A chapter places a widget with
//   <div class="lora-widget" data-widget="NAME" data-src="data/FILE.json"></div>
//   <script src="widgets/widgets.js"></script>
// and the widget draws itself from the JSON file, which the companion crate wrote:
//   lora-calculator  data/models.json      (cargo run -p lorakit --example ch01_model_sizes)
//   low-rank         data/low_rank.json    (cargo run -p lorakit --example ch02_low_rank)
//   before-after     data/experiments/before_after.json  (lora experiments)
//   training-curves  data/experiments/before_after.json or rank.json (lora experiments)
// A missing file shows "no data yet" with the command that writes it (data-missing).
//
// Reading files: over http (mdbook serve, any static server) with fetch. Browsers refuse
// fetch on file:// pages, so `scripts/book.sh build` also writes each data file as a
// script (FILE.json.js, setting window.LORA_BOOK_DATA[path]) that a <script> tag may load.
(function () {
  "use strict";
  if (window.LoraWidgets) {
    window.LoraWidgets.scan(); // the script is included once per widget; run once per div
    return;
  }
  const script = document.currentScript;
  const bookRoot = new URL("../", script.src); // this file is <root>/widgets/widgets.js

  const css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = new URL("widgets.css", script.src).href;
  document.head.appendChild(css);

  // ---- helpers --------------------------------------------------------------------------
  const fmtInt = (n) => Math.round(n).toLocaleString("en-US");
  const fmtPct = (x) => (x >= 10 ? x.toFixed(1) : x >= 0.1 ? x.toFixed(2) : x.toPrecision(2)) + "%";
  const MiB = 1024 * 1024;
  const fmtBytes = (b) => (b >= 1024 * MiB ? (b / 1024 / MiB).toFixed(2) + " GiB" : (b / MiB).toFixed(b >= 100 * MiB ? 0 : 2) + " MiB");
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c != null) e.append(c);
    return e;
  }
  function svgEl(tag, attrs) {
    const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  // Resolve `src` against the page, and name it by its path below the book's root: the key
  // the file:// wrappers use.
  function dataKey(src) {
    const abs = new URL(src, document.baseURI).href;
    return abs.startsWith(bookRoot.href) ? abs.slice(bookRoot.href.length) : abs;
  }

  // -> the parsed JSON, or null when the file does not exist (yet).
  function loadData(src) {
    const key = dataKey(src);
    const url = new URL(key, bookRoot).href;
    if (location.protocol !== "file:") {
      return fetch(url, { cache: "no-cache" }).then((res) => {
        if (res.status === 404) return null;
        if (!res.ok) throw new Error(`${key}: HTTP ${res.status}`);
        return res.text().then((text) => {
          try {
            return JSON.parse(text);
          } catch (e) {
            throw new Error(`${key} is not valid JSON: ${e.message}`);
          }
        });
      });
    }
    window.LORA_BOOK_DATA = window.LORA_BOOK_DATA || {};
    if (key in window.LORA_BOOK_DATA) return Promise.resolve(window.LORA_BOOK_DATA[key]);
    return new Promise((resolve) => {
      const s = document.createElement("script");
      s.src = url + ".js";
      s.onload = () => resolve(window.LORA_BOOK_DATA[key] ?? null);
      s.onerror = () => resolve(null);
      document.head.appendChild(s);
    });
  }

  // Fail loudly, naming the file and the field, instead of drawing nonsense.
  function need(obj, path, file) {
    let v = obj;
    for (const part of path.split(".")) {
      if (v == null || !(part in v)) throw new Error(`${file}: field "${path}" is missing`);
      v = v[part];
    }
    return v;
  }

  const widgets = {};

  // ---- LoRA parameter / memory calculator (Chapter 1) -----------------------------------
  widgets["lora-calculator"] = function (root, data, file) {
    const models = need(data, "models", file);
    const bytes = need(data, "bytes", file);
    const perTrainable = bytes.weight + bytes.gradient + bytes.adam_m + bytes.adam_v;
    const ranks = [1, 2, 4, 8, 16, 32, 64, 128, 256];
    const modelSel = el("select", { "data-control": "model" });
    models.forEach((m, i) => modelSel.append(el("option", { value: String(i), text: m.name })));
    const rank = el("input", { type: "range", min: "0", max: String(ranks.length - 1), step: "1", value: "3", "data-control": "rank" });
    const rankOut = el("output");
    const baseSel = el("select", { "data-control": "base-dtype" });
    baseSel.append(el("option", { value: "4", text: "f32 (4 bytes)" }), el("option", { value: "2", text: "bf16 (2 bytes)" }));
    const targetsBox = el("span", { class: "targets" });
    const checks = {};
    for (const m of models[0].modules) {
      const cb = el("input", { type: "checkbox", value: m.name, "data-control": "target" });
      cb.checked = true;
      checks[m.name] = cb;
      targetsBox.append(el("label", {}, cb, " " + m.name));
    }
    const preset = (names) => () => {
      for (const [n, cb] of Object.entries(checks)) cb.checked = names === null || names.includes(n);
      update();
    };
    const presets = el("span", {},
      el("button", { type: "button", onclick: preset(["q_proj", "v_proj"]) , text: "q, v" }), " ",
      el("button", { type: "button", onclick: preset(["q_proj", "k_proj", "v_proj", "o_proj"]), text: "attention" }), " ",
      el("button", { type: "button", onclick: preset(null), text: "all seven" }));
    const out = el("tbody");
    const warn = el("p", { class: "warn" });
    const shapes = el("p", { class: "widget-note" });
    root.append(
      el("p", { class: "widget-title", text: "LoRA calculator: what an adapter costs" }),
      el("div", { class: "controls" },
        el("label", {}, "model ", modelSel),
        el("label", {}, "rank r ", rank, " ", rankOut),
        el("label", {}, "base weights in memory ", baseSel)),
      el("div", { class: "controls" }, "targets: ", targetsBox, presets),
      warn,
      el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "" }), el("th", { text: "LoRA" }), el("th", { text: "full fine-tuning" }))), out),
      shapes,
      el("p", { class: "widget-note", text: `Counts: lorakit's LoraConfig::num_parameters, Σ r·(in + out) over the targeted projections of every layer; shapes from ${file} (${data.command}). Memory: ${perTrainable} bytes per trainable parameter (f32 weight, gradient, AdamW m and v), the frozen base at the chosen width; activations not included (both methods pay them).` }));

    function row(label, key, lora, full, loraValue) {
      const tr = el("tr", {}, el("td", { text: label }), el("td", { class: "num", "data-out": key, "data-value": String(loraValue ?? ""), text: lora }), el("td", { class: "num", text: full }));
      out.append(tr);
    }
    function update() {
      const model = models[Number(modelSel.value)];
      const r = ranks[Number(rank.value)];
      rankOut.textContent = String(r);
      const targets = model.modules.filter((m) => checks[m.name].checked);
      out.textContent = "";
      const tooBig = targets.filter((m) => r > Math.min(m.in, m.out));
      warn.textContent = tooBig.length
        ? `r = ${r} is larger than ${tooBig.map((m) => `${m.name} (${m.out} × ${m.in})`).join(", ")}: a rank-${r} update of a smaller matrix is impossible, and lorakit refuses the configuration.`
        : targets.length === 0 ? "Choose at least one target projection." : "";
      const N = model.base_params;
      const baseBytes = Number(baseSel.value);
      shapes.textContent = `${model.name}: ${model.layers} layers, ` +
        model.modules.map((m) => `${m.name} ${m.in}→${m.out}`).join(", ") + `; ${fmtInt(N)} parameters (${model.source}).`;
      if (warn.textContent) {
        row("trainable parameters", "trainable", "—", fmtInt(N), "");
        return;
      }
      const perLayer = targets.reduce((s, m) => s + r * (m.in + m.out), 0);
      const P = perLayer * model.layers;
      row("trainable parameters", "trainable", fmtInt(P), fmtInt(N), P);
      row("share of the base model", "share", fmtPct((100 * P) / N), "100%", P / N);
      row("per layer", "per-layer", fmtInt(perLayer), fmtInt(N / model.layers), perLayer);
      row("adapter file, f32", "adapter-f32", fmtBytes(P * 4), fmtBytes(N * 4) + " (whole model)", P * 4);
      row("adapter file, f16", "adapter-f16", fmtBytes(P * 2), fmtBytes(N * 2) + " (whole model)", P * 2);
      row("AdamW state (m and v, f32)", "optimizer", fmtBytes(P * (bytes.adam_m + bytes.adam_v)), fmtBytes(N * (bytes.adam_m + bytes.adam_v)), P * (bytes.adam_m + bytes.adam_v));
      const loraMem = N * baseBytes + P * perTrainable;
      const fullMem = N * perTrainable;
      row("weights + gradients + AdamW", "training-memory", fmtBytes(loraMem), fmtBytes(fullMem), loraMem);
      const ratio = fullMem / loraMem;
      const tr = el("tr", {}, el("td", { text: "" }),
        el("td", { colspan: "2" },
          el("span", { class: "bar", style: `width:${(12 * loraMem) / fullMem}em` }), " LoRA ",
          el("br"), el("span", { class: "bar full", style: "width:12em" }), " full: ",
          el("span", { "data-out": "ratio", "data-value": String(ratio), text: `${ratio.toFixed(1)}× more` })));
      out.append(tr);
    }
    for (const c of [modelSel, rank, baseSel, ...Object.values(checks)]) c.addEventListener("input", update);
    update();
  };

  // ---- low-rank approximation explorer (Chapter 2) --------------------------------------
  widgets["low-rank"] = function (root, data, file) {
    const [m, n, k] = ["m", "n", "k"].map((f) => need(data, f, file));
    const pixels = need(data, "pixels", file), B = need(data, "b", file), A = need(data, "a", file);
    const sigma = need(data, "singular_values", file), rustErrors = need(data, "errors", file);
    if (pixels.length !== m * n || B.length !== m * k || A.length !== k * n || rustErrors.length !== k + 1)
      throw new Error(`${file}: array sizes do not match m = ${m}, n = ${n}, k = ${k}`);
    const M = pixels.map((p) => p / 255);
    const norm = Math.sqrt(M.reduce((s, x) => s + x * x, 0));
    const canvas = () => el("canvas", { class: "pixels", width: String(n), height: String(m) });
    const [cOrig, cApprox, cDiff] = [canvas(), canvas(), canvas()];
    const slider = el("input", { type: "range", min: "0", max: String(k), step: "1", value: "8", "data-control": "rank" });
    const rOut = el("output");
    const params = el("p", { "data-out": "params" });
    const error = el("p", { "data-out": "error" });
    const spectrum = el("canvas", { class: "spectrum", width: "620", height: "120" });
    root.append(
      el("p", { class: "widget-title", text: `Low-rank explorer: a ${m} × ${n} picture as B·A` }),
      el("div", { class: "controls" }, el("label", {}, "rank r ", slider, " ", rOut)),
      el("div", { class: "pictures" },
        el("figure", {}, cOrig, el("figcaption", { text: `M (${m} × ${n})` })),
        el("figure", {}, cApprox, el("figcaption", { text: "B·A" })),
        el("figure", {}, cDiff, el("figcaption", { text: "|M − B·A| (× 4)" }))),
      params, error,
      el("figure", {}, spectrum, el("figcaption", { class: "widget-note", text: "Singular values σₖ (log scale); the ones B·A keeps are orange." })),
      el("p", { class: "widget-note", text: `B = [σ₁u₁ … σᵣuᵣ] and A = [v₁ … vᵣ]ᵀ from the SVD of M: the best rank-r approximation (Eckart–Young). Data: ${file} (${data.command}); the error is computed here, in your browser, and compared with the one the Rust example computed.` }));

    function draw(c, values, scale) {
      const ctx = c.getContext("2d");
      const img = ctx.createImageData(n, m);
      values.forEach((v, i) => {
        const g = Math.max(0, Math.min(255, Math.round(v * scale * 255)));
        img.data.set([g, g, g, 255], 4 * i);
      });
      ctx.putImageData(img, 0, 0);
    }
    function drawSpectrum(r) {
      const ctx = spectrum.getContext("2d");
      const [w, h] = [spectrum.width, spectrum.height];
      ctx.clearRect(0, 0, w, h);
      const logs = sigma.map((s) => Math.log10(Math.max(s, 1e-12)));
      const lo = Math.min(...logs), hi = Math.max(...logs);
      const bw = w / k;
      logs.forEach((l, i) => {
        const bh = 4 + ((h - 8) * (l - lo)) / (hi - lo || 1);
        ctx.fillStyle = i < r ? "#e0a030" : "#9aa5b4";
        ctx.fillRect(i * bw + 1, h - bh, Math.max(1, bw - 2), bh);
      });
    }
    draw(cOrig, M, 1);
    function update() {
      const r = Number(slider.value);
      rOut.textContent = String(r);
      const approx = new Float64Array(m * n);
      for (let i = 0; i < m; i++)
        for (let c = 0; c < r; c++) {
          const b = B[i * k + c];
          for (let j = 0; j < n; j++) approx[i * n + j] += b * A[c * n + j];
        }
      let sq = 0;
      const diff = new Float64Array(m * n);
      for (let i = 0; i < m * n; i++) {
        diff[i] = Math.abs(M[i] - approx[i]);
        sq += diff[i] * diff[i];
      }
      const err = Math.sqrt(sq);
      draw(cApprox, approx, 1);
      draw(cDiff, diff, 4);
      drawSpectrum(r);
      const numbers = r * (m + n);
      params.textContent = `B is ${m} × ${r} and A is ${r} × ${n}: r·(m + n) = ${fmtInt(numbers)} numbers instead of m·n = ${fmtInt(m * n)} (${fmtPct((100 * numbers) / (m * n))}).`;
      error.textContent = `‖M − B·A‖_F = ${err.toFixed(4)}, ${fmtPct((100 * err) / norm)} of ‖M‖_F = ${norm.toFixed(4)} (the Rust example: ${rustErrors[r].toFixed(4)}).`;
      error.dataset.value = String(err);
      error.dataset.rust = String(rustErrors[r]);
    }
    slider.addEventListener("input", update);
    update();
  };

  // ---- before / after answers viewer (Chapter 12) ---------------------------------------
  function header(data) {
    const bits = [];
    if (data.date) bits.push(data.date);
    if (data.git_commit) bits.push("commit " + String(data.git_commit).slice(0, 10));
    if (data.machine && data.machine.cpu_model) bits.push(data.machine.cpu_model);
    if (data.command) bits.push(data.command);
    const p = el("p", { class: "widget-note", text: "Run: " + bits.join(" · ") });
    if (data.quick) p.append(el("strong", { class: "warn", text: " (a --quick run: tiny, for testing, not the book's numbers)" }));
    return p;
  }
  const meanSpread = (s) => (s == null ? "—" : s.spread ? `${s.mean.toFixed(3)} ± ${s.spread.toFixed(3)}` : s.mean.toFixed(3));

  widgets["before-after"] = function (root, data, file) {
    const cases = need(data, "results.use_cases", file);
    if (!cases.length) throw new Error(`${file}: results.use_cases is empty`);
    const taskSel = el("select", { "data-control": "task" });
    cases.forEach((c, i) => taskSel.append(el("option", { value: String(i), text: c.task })));
    const filterSel = el("select", { "data-control": "filter" });
    for (const [v, t] of [["all", "all examples"], ["better", "improved"], ["worse", "got worse"], ["same", "unchanged"]])
      filterSel.append(el("option", { value: v, text: t }));
    const prev = el("button", { type: "button", text: "‹ previous", "data-control": "prev" });
    const next = el("button", { type: "button", text: "next ›", "data-control": "next" });
    const where = el("span", { "data-out": "position" });
    const summary = el("p", { "data-out": "summary" });
    const body = el("div");
    root.append(
      el("p", { class: "widget-title", text: "Before and after: the same questions, base model vs base + LoRA" }),
      el("div", { class: "controls" }, el("label", {}, "task ", taskSel), el("label", {}, "show ", filterSel), prev, next, where),
      summary, body, header(data));
    let index = 0;
    function shown() {
      const c = cases[Number(taskSel.value)];
      const ex = need(c, "examples", file);
      const f = filterSel.value;
      return ex.map((e, i) => ({ ...e, at: i })).filter((e) => f === "all" || (f === "better" ? e.score_after > e.score_before : f === "worse" ? e.score_after < e.score_before : e.score_after === e.score_before));
    }
    function update() {
      const c = cases[Number(taskSel.value)];
      const b = c.baselines;
      summary.textContent = `${c.metric_name} on the test examples: base ${meanSpread(c.base)}` +
        (b ? `, told the task ${meanSpread(b.prompted)}, shown ${b.shots} examples ${meanSpread(b.few_shot)}` : "") +
        `, with LoRA ${meanSpread(c.lora)}` +
        (c.lora && c.lora.per_seed ? ` (${c.lora.per_seed.length} training seed${c.lora.per_seed.length === 1 ? "" : "s"})` : "") + ".";
      const list = shown();
      index = Math.max(0, Math.min(index, list.length - 1));
      body.textContent = "";
      if (!list.length) {
        where.textContent = "no example";
        body.append(el("p", { text: "No example in this group." }));
        return;
      }
      where.textContent = `example ${index + 1} of ${list.length}`;
      const e = list[index];
      const block = (label, text, score) => [
        el("div", {}, el("strong", { text: label }), score == null ? null : el("span", { class: "score", text: `  score ${Number(score).toFixed(2)}` })),
        el("pre", { class: "answer", text: text == null ? "" : String(text) })];
      body.append(...block("Prompt", e.prompt), ...block("Reference answer", e.reference),
        ...block("Before (base model)", e.before, e.score_before));
      const p = b && b.answers ? b.answers[e.at] : null;
      if (p) body.append(...block("Base model told the task", p.prompted, p.score_prompted),
        ...block(`Base model shown ${b.shots} examples`, p.few_shot, p.score_few_shot));
      body.append(...block("After (base + LoRA)", e.after, e.score_after));
    }
    prev.addEventListener("click", () => { index -= 1; update(); });
    next.addEventListener("click", () => { index += 1; update(); });
    taskSel.addEventListener("input", () => { index = 0; update(); });
    filterSel.addEventListener("input", () => { index = 0; update(); });
    update();
  };

  // ---- training curves (Chapters 12 and 13) ---------------------------------------------
  const COLORS = ["#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#1f78b4", "#666666", "#b15928"];

  widgets["training-curves"] = function (root, data, file) {
    const results = need(data, "results", file);
    let series, groups = null;
    if (results.use_cases) {
      series = results.use_cases.map((c) => ({ label: c.task, curve: need(c, "curve", file) }));
    } else if (results.runs) {
      series = results.runs.map((r) => ({
        label: `r=${r.r} α=${r.alpha}${r.rslora ? " rsLoRA" : ""} ` +
          (!Array.isArray(r.targets) ? "" : r.targets.length === 7 ? "all 7" : r.targets.map((t) => t.replace("_proj", "")).join(",")),
        curve: need(r, "curve", file),
      }));
      groups = results.groups || null;
    } else {
      throw new Error(`${file}: expected results.use_cases or results.runs`);
    }
    series.forEach((s, i) => (s.color = COLORS[i % COLORS.length]));
    const groupSel = el("select", { "data-control": "group" });
    groupSel.append(el("option", { value: "", text: "all runs" }));
    if (groups) for (const g of Object.keys(groups)) groupSel.append(el("option", { value: g, text: g }));
    const valBox = el("input", { type: "checkbox", "data-control": "val" });
    valBox.checked = true;
    const logBox = el("input", { type: "checkbox", "data-control": "log" });
    const legend = el("div", { class: "legend" });
    const toggles = series.map((s, i) => {
      const cb = el("input", { type: "checkbox", "data-control": "series", value: String(i) });
      cb.checked = true;
      legend.append(el("label", {}, cb, el("span", { class: "swatch", style: `background:${s.color}` }), s.label));
      return cb;
    });
    const readout = el("p", { class: "widget-note", "data-out": "readout", text: "Move the pointer over the chart to read the values." });
    const W = 700, H = 340, pad = { l: 56, r: 12, t: 12, b: 36 };
    const svg = svgEl("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img" });
    root.append(
      el("p", { class: "widget-title", text: "Training curves: loss per optimizer step" }),
      el("div", { class: "controls" },
        groups ? el("label", {}, "runs ", groupSel) : null,
        el("label", {}, valBox, " validation loss (dashed)"),
        el("label", {}, logBox, " log scale")),
      legend, svg, readout, header(data));

    let scale = null;
    function draw() {
      svg.textContent = "";
      const active = series.filter((_, i) => toggles[i].checked);
      const showVal = valBox.checked;
      const ys = [];
      let minStep = Infinity, maxStep = -Infinity;
      for (const s of active)
        for (const p of s.curve) {
          minStep = Math.min(minStep, p.step);
          maxStep = Math.max(maxStep, p.step);
          if (p.loss != null) ys.push(p.loss);
          if (showVal && p.val_loss != null) ys.push(p.val_loss);
        }
      svg.setAttribute("data-paths", "0");
      if (!ys.length) {
        const t = svgEl("text", { x: String(W / 2), y: String(H / 2), "text-anchor": "middle" });
        t.textContent = "no curve selected";
        svg.append(t);
        scale = null;
        return;
      }
      const log = logBox.checked && Math.min(...ys) > 0;
      const f = (y) => (log ? Math.log10(y) : y);
      let lo = Math.min(...ys.map(f)), hi = Math.max(...ys.map(f));
      if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
      if (maxStep <= minStep) maxStep = minStep + 1;
      const X = (s) => pad.l + ((W - pad.l - pad.r) * (s - minStep)) / (maxStep - minStep);
      const Y = (y) => pad.t + ((H - pad.t - pad.b) * (hi - f(y))) / (hi - lo);
      scale = { minStep, maxStep, active, showVal };
      // axes and 5 ticks each
      svg.append(svgEl("line", { class: "axis", x1: pad.l, y1: H - pad.b, x2: W - pad.r, y2: H - pad.b }),
        svgEl("line", { class: "axis", x1: pad.l, y1: pad.t, x2: pad.l, y2: H - pad.b }));
      for (let i = 0; i <= 4; i++) {
        const v = lo + ((hi - lo) * i) / 4, y = Y(log ? 10 ** v : v);
        const val = log ? 10 ** v : v;
        svg.append(svgEl("line", { class: "grid", x1: pad.l, y1: y, x2: W - pad.r, y2: y }));
        const t = svgEl("text", { x: String(pad.l - 4), y: String(y + 4), "text-anchor": "end" });
        t.textContent = val.toFixed(val < 1 ? 3 : 2);
        svg.append(t);
      }
      const xticks = new Set([0, 1, 2, 3, 4].map((i) => Math.round(minStep + ((maxStep - minStep) * i) / 4)));
      for (const s of xticks) {
        const tx = svgEl("text", { x: String(X(s)), y: String(H - pad.b + 14), "text-anchor": "middle" });
        tx.textContent = String(s);
        svg.append(tx);
      }
      const xl = svgEl("text", { x: String((W + pad.l) / 2), y: String(H - 4), "text-anchor": "middle" });
      xl.textContent = "optimizer step";
      const yl = svgEl("text", { x: "12", y: String(H / 2), transform: `rotate(-90 12 ${H / 2})`, "text-anchor": "middle" });
      yl.textContent = "loss (nats per token)" + (log ? ", log scale" : "");
      svg.append(xl, yl);
      let paths = 0;
      for (const s of active) {
        for (const [key, dash] of [["loss", ""], ["val_loss", "5 3"]]) {
          if (key === "val_loss" && !showVal) continue;
          const pts = s.curve.filter((p) => p[key] != null).map((p) => `${X(p.step).toFixed(1)},${Y(p[key]).toFixed(1)}`);
          if (!pts.length) continue;
          svg.append(svgEl("polyline", { points: pts.join(" "), fill: "none", stroke: s.color, "stroke-width": key === "loss" ? "1.5" : "2", "stroke-dasharray": dash }));
          paths += 1;
        }
      }
      svg.setAttribute("data-paths", String(paths));
    }
    svg.addEventListener("mousemove", (ev) => {
      if (!scale) return;
      const box = svg.getBoundingClientRect();
      const x = ((ev.clientX - box.left) * W) / box.width;
      const step = Math.round(scale.minStep + ((x - pad.l) * (scale.maxStep - scale.minStep)) / (W - pad.l - pad.r));
      const parts = [];
      for (const s of scale.active) {
        let best = null;
        for (const p of s.curve) if (best === null || Math.abs(p.step - step) < Math.abs(best.step - step)) best = p;
        if (!best) continue;
        let text = `${s.label}: step ${best.step}, loss ${best.loss == null ? "—" : best.loss.toFixed(4)}`;
        const val = s.curve.filter((p) => p.val_loss != null && p.step <= step).pop();
        if (scale.showVal && val) text += `, val ${val.val_loss.toFixed(4)} (step ${val.step})`;
        parts.push(text);
      }
      readout.textContent = parts.join(" · ");
    });
    groupSel.addEventListener("input", () => {
      const members = groupSel.value ? groups[groupSel.value] : null;
      toggles.forEach((cb, i) => (cb.checked = !members || members.includes(i)));
      draw();
    });
    for (const c of [valBox, logBox, ...toggles]) c.addEventListener("input", draw);
    draw();
  };

  // ---- driver ---------------------------------------------------------------------------
  function start(root) {
    if (root.dataset.state) return;
    root.dataset.state = "loading";
    const name = root.dataset.widget, src = root.dataset.src;
    const draw = widgets[name];
    const fail = (msg) => {
      root.dataset.state = "error";
      root.textContent = "";
      root.append(el("p", { class: "widget-error", text: `Widget "${name}" failed: ${msg}` }));
      console.error(`widget ${name} (${src}): ${msg}`);
    };
    if (!draw) return fail("unknown widget");
    if (!src) return fail("no data-src attribute");
    loadData(src).then((data) => {
      root.textContent = "";
      if (data === null) {
        root.dataset.state = "missing";
        const p = el("p", { class: "widget-missing" }, el("strong", { text: "No data yet: " }), el("code", { text: dataKey(src) }), " has not been written.");
        if (root.dataset.missing) p.append(" It is written by ", el("code", { text: root.dataset.missing }), "; run it and rebuild the book.");
        root.append(p);
        return;
      }
      draw(root, data, dataKey(src));
      root.dataset.state = "ready";
    }).catch((e) => fail(e.message));
  }
  function scan() {
    document.querySelectorAll("div.lora-widget[data-widget]").forEach(start);
  }
  window.LoraWidgets = { scan };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scan);
  else scan();
})();
