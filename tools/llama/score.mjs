#!/usr/bin/env node
// Real llama.cpp (node-llama-cpp 3.22.1, prebuilt CPU binary) on a GGUF file, for the tests.
// Run it through `bash scripts/llama.sh run ARGS…` (which points LORA_LLAMA_DIR at the install).
// Prints one JSON object on stdout.
//
//   --model F.gguf [--lora A.gguf [--lora-scale S]] --ids 1,2,3[;4,5,6] --logits all|last [--top K]
//       Evaluates each ';'-separated row of token ids at positions 0..n-1 in a fresh context
//       (no BOS added) and prints the raw logits, plus the softmax probabilities of the top K
//       tokens (default 10) at the last position:
//       {"n_vocab", "rows": [{"ids", "positions", "logits": [[…V…] per position],
//         "last": {"logsumexp", "top": [{"id", "logit", "prob"}]}}], …}
//   --model F.gguf [--lora A.gguf [--lora-scale S]] --prompt-ids 1,2,3 --greedy N
//       llama.cpp's greedy sampler (temperature 0) for N tokens, stopping at an end-of-generation
//       token (not included): {"prompt_ids", "ids", "stopped_at_eog"}
//   --model F.gguf [--lora A.gguf] --prompts P.json --greedy N
//       Ollama's path from prompt text to answer, for each prompt of P.json
//       ({"prompts": [text…], "stops": [text…]}): tokenize with the GGUF's own tokenizer
//       (special tokens parsed, BOS added when the GGUF asks for it), decode greedily in a fresh
//       context for up to N tokens, stop at an end-of-generation token or where the answer's
//       text first contains a stop string (cut there, as Ollama does):
//       {"rows": [{"prompt_ids", "ids", "text", "stopped_by"}]}
//   --model F.gguf --info [--tokenize TEXT]
//       what llama.cpp reports: architecture, n_vocab, n_ctx_train, n_embd, special tokens, the
//       chat template; with --tokenize, the ids of TEXT (special tokens parsed, no BOS added).
//       --vocab-only loads just the tokenizer (llama.cpp's ggml-vocab-*.gguf files have no tensors)
//
// Every evaluation uses the setup of the reference check in ../shared/fixtures (tiny-llama-gguf):
// CPU only, F32 KV cache, flash attention off, 2 threads.
// Errors (a missing file, llama.cpp refusing a model or adapter) exit with status 1 and a
// message on stderr that names the file and gives llama.cpp's own log lines.

import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const THREADS = 2;

function fail(msg) {
    process.stderr.write(`score.mjs: ${msg}\n`);
    process.exit(1);
}

function parseArgs(argv) {
    const flags = new Set(["--info", "--verbose", "--vocab-only"]);
    const out = {};
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (!a.startsWith("--")) fail(`unexpected argument ${JSON.stringify(a)}`);
        if (flags.has(a)) { out[a.slice(2)] = true; continue; }
        if (i + 1 >= argv.length) fail(`${a} needs a value`);
        out[a.slice(2)] = argv[++i];
    }
    const known = ["model", "lora", "lora-scale", "ids", "logits", "top", "prompt-ids", "prompts", "greedy", "info", "tokenize", "verbose", "vocab-only"];
    for (const k of Object.keys(out)) if (!known.includes(k)) fail(`unknown option --${k}`);
    return out;
}

function parseIds(text, what) {
    const ids = text.split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) => {
        if (!/^\d+$/.test(s)) fail(`${what}: ${JSON.stringify(s)} is not a token id`);
        return Number(s);
    });
    if (ids.length === 0) fail(`${what}: no token ids`);
    return ids;
}

function checkFile(file, what) {
    let st;
    try {
        st = fs.statSync(file);
    } catch (e) {
        fail(`${what} file not found: ${file} (${e.code ?? e.message})`);
    }
    if (!st.isFile()) fail(`${what} is not a file: ${file}`);
}

// The shortest decimal that reads back as the same f32 (llama.cpp's logits are f32), so the
// JSON stays about half the size of full f64 digits and loses nothing.
function f32(x) {
    if (!Number.isFinite(x)) return x; // JSON.stringify writes null; the reader reports it
    for (let p = 6; p < 9; p++) {
        const s = x.toPrecision(p);
        if (Math.fround(Number(s)) === x) return Number(s);
    }
    return Number(x.toPrecision(9));
}

async function importNodeLlamaCpp() {
    const dir = process.env.LORA_LLAMA_DIR;
    if (!dir) return import("node-llama-cpp");
    let entry;
    try {
        entry = createRequire(path.join(dir, "package.json")).resolve("node-llama-cpp");
    } catch {
        fail(`node-llama-cpp is not installed in ${dir}; run: bash scripts/llama.sh install`);
    }
    return import(pathToFileURL(entry).href);
}

const args = parseArgs(process.argv.slice(2));
if (!args.model) fail("--model F.gguf is needed");
const mode = args.info ? "info"
    : args.prompts !== undefined ? "prompts"
    : args.greedy !== undefined ? "greedy"
    : args.ids !== undefined ? "logits" : null;
if (!mode) fail("one of --ids, --prompt-ids with --greedy, --prompts with --greedy, or --info is needed");
const modelPath = path.resolve(args.model);
checkFile(modelPath, "model");
const loraPath = args.lora ? path.resolve(args.lora) : null;
if (loraPath) checkFile(loraPath, "LoRA adapter");
const loraScale = args["lora-scale"] !== undefined ? Number(args["lora-scale"]) : 1;
if (!Number.isFinite(loraScale)) fail(`--lora-scale ${args["lora-scale"]} is not a number`);

const { getLlama, LlamaLogLevel } = await importNodeLlamaCpp();

// llama.cpp's log lines: kept, and shown only in error messages (or all of them with --verbose).
const logLines = [];
const verbose = args.verbose === true;
const logger = (level, message) => {
    const line = `[${level}] ${String(message).trimEnd()}`;
    logLines.push(line);
    if (logLines.length > 200) logLines.shift();
    if (verbose) process.stderr.write(line + "\n");
};
// llama.cpp's log lines reach JS asynchronously and may come after the error they explain: wait
// (up to 1 s) for an error line before giving up on them.
async function failWithLog(msg) {
    for (let i = 0; i < 20 && !logLines.some((l) => /^\[(error|fatal)\]/.test(l)); i++)
        await new Promise((r) => setTimeout(r, 50));
    fail(msg + llamaSaid());
}

const llamaSaid = () => {
    const errors = logLines.filter((l) => /^\[(error|fatal)\]/.test(l));
    const lines = errors.length ? errors : logLines.filter((l) => /^\[warn\]/.test(l));
    const unique = [...new Set(lines)].slice(-20);
    return unique.length
        ? `\nllama.cpp said:\n  ${unique.join("\n  ")}`
        : " (node-llama-cpp's own GGUF reader refused the file before llama.cpp read it)";
};

const llama = await getLlama({
    gpu: false,
    build: "never",
    skipDownload: true,
    usePrebuiltBinaries: true,
    progressLogs: false,
    maxThreads: THREADS,
    logLevel: verbose ? LlamaLogLevel.debug : LlamaLogLevel.warn,
    logger,
}).catch((e) => failWithLog(`the prebuilt llama.cpp binary does not load: ${e.message}`));

let model;
try {
    model = await llama.loadModel({
        modelPath,
        vocabOnly: args["vocab-only"] === true,
        gpuLayers: 0,
        defaultContextFlashAttention: false,
        experimentalDefaultContextKvCacheKeyType: "F32",
        experimentalDefaultContextKvCacheValueType: "F32",
    });
} catch (e) {
    await failWithLog(`llama.cpp could not load the model ${modelPath}: ${e.message}`);
}

const meta = model.fileInfo.metadata ?? {};
const metaVocab = meta.tokenizer?.ggml?.tokens?.length;

async function newContext(contextSize) {
    const options = {
        contextSize,
        batchSize: contextSize,
        sequences: 1,
        threads: { ideal: THREADS, min: THREADS },
        flashAttention: false,
        experimentalKvCacheKeyType: "F32",
        experimentalKvCacheValueType: "F32",
        failedCreationRemedy: false,
        ignoreMemorySafetyChecks: true,
    };
    if (loraPath) options.lora = { adapters: [{ filePath: loraPath, scale: loraScale }] };
    try {
        return await model.createContext(options);
    } catch (e) {
        const what = loraPath ? `a context with the LoRA adapter ${loraPath} on ${modelPath}` : `a context for ${modelPath}`;
        await failWithLog(`llama.cpp could not create ${what}: ${e.message}`);
    }
}

// node-llama-cpp keeps one cell of a context free and silently erases the oldest tokens ("context
// shift") when a sequence outgrows it, which would change the logits without a word. Contexts
// here are sized to fit (tokens + 1) and a shift is an error.
const noContextShift = {
    contextShift: {
        strategy: () => {
            throw new Error("the context is full (node-llama-cpp would shift it and drop the first tokens)");
        },
    },
};

function checkIds(ids, what) {
    if (metaVocab === undefined) return;
    for (const id of ids) if (id >= metaVocab) fail(`${what}: token id ${id} is outside the vocabulary (${metaVocab}) of ${modelPath}`);
}

// Dense logits from node-llama-cpp's Map (token -> logit, sorted by logit).
function denseLogits(map, nVocab) {
    const v = new Array(nVocab).fill(NaN);
    for (const [tok, val] of map) v[tok] = val;
    return v;
}

function lastStats(logits, k) {
    let max = -Infinity;
    for (const x of logits) if (x > max) max = x;
    let sum = 0;
    for (const x of logits) sum += Math.exp(x - max);
    const lse = max + Math.log(sum);
    const order = logits.map((x, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
    const argmax = order[0];
    order.length = Math.min(k, order.length);
    return { logsumexp: lse, argmax, top: order.map((i) => ({ id: i, logit: f32(logits[i]), prob: Math.exp(logits[i] - lse) })) };
}

const common = {
    llama_cpp: llama.llamaCppRelease.release,
    node_llama_cpp: "3.22.1",
    model: modelPath,
    lora: loraPath,
    lora_scale: loraPath ? loraScale : null,
};

function greedyCount() {
    const n = Number(args.greedy);
    if (!Number.isInteger(n) || n < 0) fail(`--greedy ${args.greedy} is not a count`);
    return n;
}

// llama.cpp's greedy sampler (temperature 0) for up to n tokens in a fresh context. Stops at an
// end-of-generation token (not kept) or once the answer's text contains one of `stops` (the
// text is cut before it). Returns the kept token ids, the text (special tokens written out) and
// why it stopped: "eog", "stop" or "length".
// `shared` (a context's sequence) is reused and cleared after when given; otherwise a context
// is made for this prompt.
async function greedy(prompt, n, stops, shared = null) {
    const ctx = shared ? null : await newContext(prompt.length + n + 1);
    const seq = shared ?? ctx.getSequence();
    const ids = [];
    let text = "";
    let stoppedBy = "length";
    const next = { generateNext: { token: true, options: { temperature: 0 } } };
    let input = prompt.map((t, i) => (i === prompt.length - 1 ? [t, next] : t));
    for (let step = 0; step < n; step++) {
        let res;
        try {
            res = await seq.controlledEvaluate(input, noContextShift);
        } catch (e) {
            await failWithLog(`llama.cpp failed to evaluate on ${modelPath}: ${e.message}`);
        }
        const tok = res[input.length - 1]?.next?.token;
        if (tok === undefined || tok === null) await failWithLog(`llama.cpp sampled no token at step ${step}`);
        if (model.isEogToken(tok)) { stoppedBy = "eog"; break; }
        ids.push(tok);
        text = model.detokenize(ids, true);
        const cut = Math.min(...stops.map((s) => text.indexOf(s)).filter((i) => i >= 0));
        if (Number.isFinite(cut)) { text = text.slice(0, cut); stoppedBy = "stop"; break; }
        input = [[tok, next]];
    }
    if (shared) await seq.clearHistory();
    else await ctx.dispose();
    return { ids, text, stoppedBy };
}

let result;
if (mode === "logits") {
    const rows = args.ids.split(";").filter((r) => r.trim() !== "").map((r, i) => parseIds(r, `--ids row ${i}`));
    if (rows.length === 0) fail("--ids: no rows");
    const which = args.logits ?? "all";
    if (which !== "all" && which !== "last") fail(`--logits must be all or last, not ${which}`);
    const topK = args.top !== undefined ? Number(args.top) : 10;
    if (!Number.isInteger(topK) || topK < 0) fail(`--top ${args.top} is not a count`);
    rows.forEach((r, i) => checkIds(r, `--ids row ${i}`));
    const out = [];
    let nVocab = metaVocab;
    for (const ids of rows) {
        const ctx = await newContext(ids.length + 1);
        const seq = ctx.getSequence();
        const input = ids.map((t, i) =>
            which === "all" || i === ids.length - 1 ? [t, { generateNext: { logits: true } }] : t);
        let res;
        try {
            res = await seq.controlledEvaluate(input, noContextShift);
        } catch (e) {
            await failWithLog(`llama.cpp failed to evaluate ${ids.length} tokens on ${modelPath}: ${e.message}`);
        }
        const positions = [];
        const logits = [];
        for (let i = 0; i < ids.length; i++) {
            const map = res[i]?.next?.logits;
            if (!map) continue;
            if (nVocab === undefined) nVocab = map.size;
            if (map.size !== nVocab) fail(`llama.cpp returned ${map.size} logits at position ${i}, expected ${nVocab}`);
            positions.push(i);
            logits.push(denseLogits(map, nVocab));
        }
        if (logits.length === 0) fail("llama.cpp returned no logits");
        const last = lastStats(logits[logits.length - 1], topK);
        out.push({ ids, positions, logits: logits.map((row) => row.map(f32)), last });
        await ctx.dispose();
    }
    result = { ...common, n_vocab: nVocab, rows: out };
} else if (mode === "greedy") {
    if (args["prompt-ids"] === undefined) fail("--greedy needs --prompt-ids");
    const prompt = parseIds(args["prompt-ids"], "--prompt-ids");
    const n = greedyCount();
    checkIds(prompt, "--prompt-ids");
    const { ids, stoppedBy } = await greedy(prompt, n, []);
    result = { ...common, prompt_ids: prompt, ids, stopped_at_eog: stoppedBy === "eog" };
} else if (mode === "prompts") {
    const n = greedyCount();
    let spec;
    try {
        spec = JSON.parse(fs.readFileSync(args.prompts, "utf8"));
    } catch (e) {
        fail(`--prompts ${args.prompts}: ${e.message}`);
    }
    if (!Array.isArray(spec.prompts) || !spec.prompts.every((p) => typeof p === "string"))
        fail(`--prompts ${args.prompts}: "prompts" must be a list of strings`);
    const stops = spec.stops ?? [];
    if (!Array.isArray(stops) || !stops.every((p) => typeof p === "string" && p !== ""))
        fail(`--prompts ${args.prompts}: "stops" must be a list of non-empty strings`);
    const tokenized = spec.prompts.map((text) => {
        const ids = Array.from(model.tokenize(text, true));
        const bos = model.tokens.bos;
        if (model.tokens.shouldPrependBosToken && bos != null && ids[0] !== bos) ids.unshift(bos);
        return ids;
    });
    // One context for every prompt, each in a cleared sequence (as Ollama reuses its slots).
    const ctx = await newContext(Math.max(1, ...tokenized.map((ids) => ids.length)) + n + 1);
    const seq = ctx.getSequence();
    const rows = [];
    for (const ids of tokenized) {
        const out = await greedy(ids, n, stops, seq);
        rows.push({ prompt_ids: ids, ids: out.ids, text: out.text, stopped_by: out.stoppedBy });
    }
    await ctx.dispose();
    result = { ...common, rows };
} else {
    const tokens = model.tokens;
    const chatTemplate = meta.tokenizer?.chat_template ?? null;
    result = {
        ...common,
        architecture: model.architecture ?? meta.general?.architecture ?? null,
        name: meta.general?.name ?? null,
        type_description: model.typeDescription,
        file_type: meta.general?.file_type ?? null,
        n_vocab: metaVocab ?? null,
        vocabulary_type: model.vocabularyType,
        n_ctx_train: model.trainContextSize,
        n_embd: model.embeddingVectorSize,
        n_layer: meta[meta.general?.architecture]?.block_count ?? null,
        n_params: model.fileInsights.totalParameters,
        size_bytes: model.size,
        bos: tokens.bos,
        eos: tokens.eos,
        eot: tokens.eot,
        bos_string: tokens.bosString,
        eos_string: tokens.eosString,
        eot_string: tokens.eotString,
        add_bos: tokens.shouldPrependBosToken,
        add_eos: tokens.shouldAppendEosToken,
        chat_template: chatTemplate,
        warnings: model.getWarnings(),
    };
    if (args.tokenize !== undefined) {
        result.tokenize = {
            text: args.tokenize,
            ids: Array.from(model.tokenize(args.tokenize, true)),
            ids_no_special: Array.from(model.tokenize(args.tokenize, false)),
        };
    }
}

await model.dispose();
await llama.dispose();
process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(0));
