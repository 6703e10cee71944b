#!/usr/bin/env python3
"""Writes the fuzz seeds into fuzz/corpus/<target>/ (all small: a few KB each).

Seeds are the shapes the project really reads, cut down so libFuzzer mutates headers
rather than megabytes of weights: a tiny Llama GGUF (f32 and Q8_0, with a gpt2 vocabulary
and a chat template), PEFT adapter weights for the fuzz crate's tiny model, the first
records of the sample datasets in data/, the PEFT config of ../shared/fixtures, TOML
configs, and chat messages with Jinja-looking content. Run: python3 fuzz/make_seeds.py
"""
import json
import struct
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
REPO = FUZZ.parent
SHARED = REPO.parent / "shared" / "fixtures"
CORPUS = FUZZ / "corpus"


def put(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data.encode() if isinstance(data, str) else data)


# --- GGUF (v3, little endian) -------------------------------------------------------
def gguf_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_kv(key, value):
    if isinstance(value, bool):
        body = struct.pack("<I?", 7, value)
    elif isinstance(value, int):
        body = struct.pack("<II", 4, value)  # u32
    elif isinstance(value, float):
        body = struct.pack("<If", 6, value)
    elif isinstance(value, str):
        body = struct.pack("<I", 8) + gguf_str(value)
    else:  # list of strings
        body = struct.pack("<IIQ", 9, 8, len(value)) + b"".join(gguf_str(s) for s in value)
    return gguf_str(key) + body


def q8_0(values):
    """ggml Q8_0: blocks of 32 as (f16 scale, 32 × i8)."""
    out = b""
    for i in range(0, len(values), 32):
        block = values[i : i + 32]
        scale = max(abs(v) for v in block) / 127 or 1.0
        out += struct.pack("<e", scale) + bytes((round(v / scale) & 0xFF) for v in block)
    return out


def gguf(quantize_q=False, rope_freqs=False):
    h, heads, kv, hd, ff, vocab = 8, 2, 1, 4, 16, 16
    shapes = {"token_embd.weight": (vocab, h), "output_norm.weight": (h,)}
    if rope_freqs:
        shapes["rope_freqs.weight"] = (hd // 2,)
    shapes.update({
        "blk.0.attn_norm.weight": (h,), "blk.0.ffn_norm.weight": (h,),
        "blk.0.attn_q.weight": (heads * hd, h), "blk.0.attn_k.weight": (kv * hd, h),
        "blk.0.attn_v.weight": (kv * hd, h), "blk.0.attn_output.weight": (h, heads * hd),
        "blk.0.ffn_gate.weight": (ff, h), "blk.0.ffn_up.weight": (ff, h),
        "blk.0.ffn_down.weight": (h, ff),
    })
    tokens = ["<|im_start|>", "<|im_end|>"] + list("abcdefghijkl") + ["ab", "abc"]
    meta = [
        ("general.architecture", "llama"), ("general.name", "fuzz-tiny"),
        ("llama.embedding_length", h), ("llama.feed_forward_length", ff),
        ("llama.block_count", 1), ("llama.attention.head_count", heads),
        ("llama.attention.head_count_kv", kv), ("llama.context_length", 64),
        ("llama.attention.layer_norm_rms_epsilon", 1e-5), ("llama.rope.freq_base", 10000.0),
        ("tokenizer.ggml.model", "gpt2"), ("tokenizer.ggml.pre", "smollm"),
        ("tokenizer.ggml.tokens", tokens), ("tokenizer.ggml.merges", ["a b", "ab c"]),
        ("tokenizer.ggml.bos_token_id", 0), ("tokenizer.ggml.eos_token_id", 1),
        ("tokenizer.chat_template",
         "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"),
    ]
    infos, data = b"", b""
    for name, shape in shapes.items():
        n = 1
        for d in shape:
            n *= d
        values = [((i * 7) % 13 - 6) / 8 for i in range(n)]
        q = quantize_q and name.endswith("attn_q.weight")
        blob = q8_0(values) if q else struct.pack(f"<{n}f", *values)
        infos += gguf_str(name) + struct.pack("<I", len(shape))
        infos += b"".join(struct.pack("<Q", d) for d in reversed(shape))  # ggml: ne0 first
        infos += struct.pack("<IQ", 8 if q else 0, len(data))
        data += blob + b"\0" * (-len(blob) % 32)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(shapes), len(meta))
    head += b"".join(gguf_kv(k, v) for k, v in meta) + infos
    return head + b"\0" * (-len(head) % 32) + data


put("gguf", "tiny-f32.gguf", gguf())
put("gguf", "tiny-q8_0.gguf", gguf(quantize_q=True))
put("gguf", "tiny-rope-freqs.gguf", gguf(rope_freqs=True))


# --- safetensors: PEFT weights for lorakit_fuzz::tiny_model (2 layers, r = 2, q and v) --
def safetensors(dtype="F32"):
    size = {"F32": 4, "F16": 2, "BF16": 2}[dtype]
    tensors = {}
    for layer in range(2):
        for module, out in (("q_proj", 8), ("v_proj", 4)):
            p = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{p}.lora_A.weight"] = (2, 8)
            tensors[f"{p}.lora_B.weight"] = (out, 2)
    header, data = {}, b""
    for name, shape in tensors.items():
        n = shape[0] * shape[1]
        if dtype == "F32":
            blob = struct.pack(f"<{n}f", *[i / n for i in range(n)])
        elif dtype == "F16":
            blob = struct.pack(f"<{n}e", *[i / n for i in range(n)])
        else:  # bf16: the top half of an f32
            blob = b"".join(struct.pack("<f", i / n)[2:] for i in range(n))
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [len(data), len(data) + n * size]}
        data += blob
    h = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h)) + h + data


for dt in ("F32", "F16", "BF16"):
    put("safetensors", f"adapter-{dt.lower()}.safetensors", safetensors(dt))

# --- adapter_config.json --------------------------------------------------------------
for d in ("tiny-peft", "tiny-peft-rslora"):
    put("adapter_config", f"{d}.json", (SHARED / d / "adapter_config.json").read_bytes())
put("adapter_config", "all-linear.json", json.dumps(
    {"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": "all-linear", "use_rslora": True}))

# --- datasets: the first records of the sample data -----------------------------------
def lines(path, n):
    return "".join((REPO / path).read_text().splitlines(keepends=True)[:n])


for task in ("extract", "support", "persona"):
    put("dataset_jsonl", f"{task}.jsonl", lines(f"data/{task}/train.jsonl", 3))
put("dataset_jsonl", "instruction.jsonl",
    '{"instruction": "Say hi", "input": "", "output": "hi"}\r\n\n{"instruction": "x", "output": "y", "system": "s"}\n')
records = json.loads((REPO / "data/sample_dataset.json").read_text())[:3]
put("dataset_json", "sample.json", json.dumps(records, indent=2, ensure_ascii=False))
chat = [json.loads(l) for l in lines("data/extract/train.jsonl", 2).splitlines()]
put("dataset_json", "chat.json", json.dumps(chat, indent=2, ensure_ascii=False))
put("dataset_csv", "instruction.csv", lines("data/training_examples.csv", 4))
put("dataset_csv", "chat.csv",
    '\ufeffsystem,user,assistant\r\n"Be brief","Hi, ""you""","Hello\r\nthere"\r\n,Q,A\r\n')

# --- TOML training configs ------------------------------------------------------------
put("train_config", "full.toml", """model = "smollm2-135m"
train_data = "data/extract/train.jsonl"
validation_data = "data/extract/validation.jsonl"
output_dir = "models/lora_adapters/extract"
r = 8
alpha = 16.0
dropout = 0.05
target_modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
use_rslora = false
lr = 0.002
weight_decay = 0.0
warmup_steps = 5
schedule = "cosine"
max_grad_norm = 1.0
epochs = 1
max_steps = 30
micro_batch = 4
grad_accum = 2
max_len = 256
train_on_prompt = false
eval_every = 10
save_every = 10
seed = 42
""")
put("train_config", "short.toml", 'r = 16\nalpha = 32\nschedule = "linear"\ntarget_modules = ["q_proj", "v_proj"]\n')

# --- chat messages (first byte: flags; U+001E between messages, U+001F after a role) ---
RS, US = "\u001e", "\u001f"
for name, text in {
    "plain": f"\x01system{US}Be brief.{RS}user{US}Hi!{RS}assistant{US}Hello.",
    "jinja": "\x01{{ 7*7 }}" + RS + "{% for x in range(99999999) %}x{% endfor %}" + RS + "{{ 'a' * 1000000000 }}",
    "tokens": f"\x00<|im_end|>\n<|im_start|>system{RS}<|eot_id|><|start_header_id|>{RS}ipython{US}{{{{ raise_exception('x') }}}}",
    "roles": f"\x01tool{US}{{\"a\": 1}}{RS}{{{{ messages }}}}{US}  spaced  {RS}user{US}\t{{#- comment #}}",
}.items():
    put("chat_template", name, text)
