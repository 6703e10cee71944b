#!/usr/bin/env node
// The llama.cpp side of `lora bench` (node-llama-cpp 3.22.1, prebuilt CPU binary): prompt
// processing and greedy decoding speed on a GGUF file. `lora bench --llama-dir DIR` runs it with
// LORA_LLAMA_DIR=DIR (see scripts/bench.sh); prints one JSON object on stdout.
//
//   --model F.gguf --prompt-ids 1,2,3 --decode N [--reps R] [--threads T]
//       One untimed warm-up run, then R timed runs (default 3), each in a fresh context: the
//       prompt in one batch (prefill), then N greedy tokens one at a time, the first of them
//       sampled from the prefill, not stopping at end-of-generation tokens (so that every engine
//       decodes the same count). Reports the medians:
//       {"prompt_tokens", "decode_tokens", "prefill_tokens_per_second", "decode_tokens_per_second",
//        "ids" (first timed run), "llama_cpp", "node_llama_cpp", "settings"}
//
// Settings are llama.cpp's defaults (F16 KV cache) except the thread count and flash attention
// off; the context holds exactly the prompt and the decoded tokens.

import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

function fail(msg) {
    process.stderr.write(`bench.mjs: ${msg}\n`);
    process.exit(1);
}

function parseArgs(argv) {
    const known = ["model", "prompt-ids", "decode", "reps", "threads"];
    const out = {};
    for (let i = 0; i < argv.length; i += 2) {
        const a = argv[i];
        if (!a.startsWith("--") || !known.includes(a.slice(2))) fail(`unknown argument ${JSON.stringify(a)} (known: --${known.join(", --")})`);
        if (i + 1 >= argv.length) fail(`${a} needs a value`);
        out[a.slice(2)] = argv[i + 1];
    }
    return out;
}

function count(text, what, min) {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) fail(`${what} ${JSON.stringify(text)}: a whole number >= ${min} is needed`);
    return n;
}

const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

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
const modelPath = path.resolve(args.model);
if (!fs.existsSync(modelPath) || !fs.statSync(modelPath).isFile()) fail(`model file not found: ${modelPath}`);
if (args["prompt-ids"] === undefined) fail("--prompt-ids is needed");
const prompt = args["prompt-ids"].split(",").map((s, i) => count(s.trim(), `--prompt-ids item ${i}`, 0));
const decode = count(args.decode ?? "", "--decode", 2);
const reps = count(args.reps ?? "3", "--reps", 1);
const threads = count(args.threads ?? "2", "--threads", 1);

const { getLlama, LlamaLogLevel } = await importNodeLlamaCpp();
const llama = await getLlama({
    gpu: false,
    build: "never",
    skipDownload: true,
    usePrebuiltBinaries: true,
    progressLogs: false,
    maxThreads: threads,
    logLevel: LlamaLogLevel.error,
}).catch((e) => fail(`the prebuilt llama.cpp binary does not load: ${e.message}`));
const model = await llama.loadModel({ modelPath, gpuLayers: 0 }).catch((e) => fail(`llama.cpp could not load ${modelPath}: ${e.message}`));
const nVocab = model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length;
if (nVocab !== undefined && prompt.some((t) => t >= nVocab)) fail(`--prompt-ids: a token id is outside the vocabulary (${nVocab})`);

const greedy = { generateNext: { token: true, options: { temperature: 0 } } };
const noShift = { contextShift: { strategy: () => { throw new Error("the context is full"); } } };

async function run() {
    const ctx = await model.createContext({
        contextSize: prompt.length + decode + 1,
        batchSize: prompt.length,
        sequences: 1,
        threads: { ideal: threads, min: threads },
        flashAttention: false,
        failedCreationRemedy: false,
        ignoreMemorySafetyChecks: true,
    });
    const seq = ctx.getSequence();
    let t = performance.now();
    let res = await seq.controlledEvaluate(prompt.map((id, i) => (i === prompt.length - 1 ? [id, greedy] : id)), noShift);
    const prefill = (performance.now() - t) / 1000;
    let tok = res[prompt.length - 1]?.next?.token;
    const ids = [tok];
    t = performance.now();
    for (let i = 1; i < decode; i++) {
        res = await seq.controlledEvaluate([[tok, greedy]], noShift);
        tok = res[0]?.next?.token;
        if (tok === undefined || tok === null) fail(`llama.cpp sampled no token at step ${i}`);
        ids.push(tok);
    }
    const decodeSecs = (performance.now() - t) / 1000;
    await ctx.dispose();
    return { prefill: prompt.length / prefill, decode: (decode - 1) / decodeSecs, ids };
}

await run(); // warm-up, untimed
const runs = [];
for (let r = 0; r < reps; r++) runs.push(await run());
const result = {
    prompt_tokens: prompt.length,
    decode_tokens: decode,
    prefill_tokens_per_second: median(runs.map((r) => r.prefill)),
    decode_tokens_per_second: median(runs.map((r) => r.decode)),
    ids: runs[0].ids,
    llama_cpp: llama.llamaCppRelease.release,
    node_llama_cpp: "3.22.1",
    settings: { threads, kv_cache: "f16 (llama.cpp default)", flash_attention: false, reps },
};
await model.dispose();
await llama.dispose();
process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(0));
