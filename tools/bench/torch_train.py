#!/usr/bin/env python3
"""The PyTorch + PEFT side of `lora bench`: the same LoRA training step as candle's, on the
same weights and the same batch, timed the same way. Prints one JSON object (the fields of
lorakit's bench::jobs::TrainResult, plus versions) on stdout; progress goes to stderr.

    python tools/bench/torch_train.py --gguf MODEL.gguf --seq 128 [--batch 4 --steps 10 --warmup 2 --threads 2]
        [--init-adapter DIR] [--compile]

The weights come from the GGUF file candle trains (transformers dequantizes it to f32 with the
`gguf` package), so both sides start from identical numbers: the first step's loss must agree.
With --init-adapter (the PEFT directory candle saved before its first step), the adapter starts
from candle's A and B too, so every later loss must agree as well. The model runs as a PyTorch
engineer would benchmark it: SDPA attention, no KV cache, and with --compile under
torch.compile (the default inductor backend).
Setup: scripts/bench.sh installs tools/bench/requirements.txt into a virtualenv.
"""

import argparse
import json
import os
import re
import statistics
import sys
import time

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def vm_hwm_mib():
    """Peak resident memory since start or the last reset_peak() (Linux VmHWM)."""
    with open("/proc/self/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) / 1024


def vm_rss_mib():
    """Resident memory now (Linux VmRSS)."""
    with open("/proc/self/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


def release_memory():
    """Return freed heap pages to the system, as lorakit's runtime::release_memory does before
    it measures, so that both sides' after-load memory is counted the same way."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def reset_peak():
    """Start VmHWM again from the current RSS, so that loading does not count as training."""
    release_memory()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def bench_batch(batch, seq, vocab):
    """The batch of lorakit's bench::jobs::bench_batch, id for id."""
    span = max(min(vocab, 49_000) - 100, 1)
    return [[min((b * 7919 + t * 104_729) % span + 100, vocab - 1) for t in range(seq)] for b in range(batch)]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gguf", required=True)
    p.add_argument("--seq", type=int, required=True)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--init-adapter", help="a PEFT adapter directory to start from (candle's initial A and B)")
    p.add_argument("--compile", action="store_true", help="run the model under torch.compile")
    a = p.parse_args()
    if not os.path.isfile(a.gguf):
        sys.exit(f"torch_train.py: {a.gguf}: no such GGUF file")

    import torch
    import transformers
    import peft
    import gguf

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model = transformers.LlamaForCausalLM.from_pretrained(
        os.path.dirname(os.path.abspath(a.gguf)),
        gguf_file=os.path.basename(a.gguf),
        dtype=torch.float32,
        attn_implementation="sdpa",
    )
    model.config.use_cache = False
    if a.init_adapter:
        model = peft.PeftModel.from_pretrained(model, a.init_adapter, is_trainable=True)
    else:
        cfg = peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=TARGETS, bias="none")
        model = peft.get_peft_model(model, cfg)
    model.train()
    forward = torch.compile(model) if a.compile else model
    load_seconds = time.perf_counter() - t0
    log(f"  torch: loaded in {load_seconds:.1f} s")

    ids = torch.tensor(bench_batch(a.batch, a.seq, model.config.vocab_size))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    process_peak = vm_hwm_mib()
    peak_reset = reset_peak()
    rss_after_load = vm_rss_mib()
    times, cpu_times, losses = [], [], []
    for step in range(a.warmup + a.steps):
        t, cpu = time.perf_counter(), time.process_time()
        loss = forward(input_ids=ids, labels=ids, use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        value = loss.item()
        dt, dcpu = time.perf_counter() - t, time.process_time() - cpu
        losses.append(value)
        if step >= a.warmup:
            times.append(dt)
            cpu_times.append(dcpu)
        log(f"  torch seq {a.seq} step {step + 1}/{a.warmup + a.steps}: loss {value:.4f}, {dt:.2f} s")

    med = statistics.median(times)
    tokens = a.batch * a.seq
    out = {
        "seq": a.seq,
        "batch": a.batch,
        "tokens_per_step": tokens,
        "step_seconds": times,
        "median_step_seconds": med,
        "median_step_cpu_seconds": statistics.median(cpu_times),
        "tokens_per_second": tokens / med,
        "peak_rss_mib": vm_hwm_mib(),
        "process_peak_rss_mib": max(process_peak, vm_hwm_mib()) if peak_reset else vm_hwm_mib(),
        "peak_rss_reset_after_load": peak_reset,
        "load_seconds": load_seconds,
        "rss_after_load_mib": rss_after_load,
        "first_loss": losses[0],
        "losses": losses,
        "trainable_params": sum(p.numel() for p in params),
        "threads": torch.get_num_threads(),
        "compiled": a.compile,
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
            "gguf": getattr(gguf, "__version__", None) or _dist_version("gguf"),
        },
    }
    print(json.dumps(out))


def _dist_version(name):
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    main()
