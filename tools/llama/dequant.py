"""llama.cpp's own Python reference for GGML block types (gguf-py's `quants.py`, from the source
that node-llama-cpp bundles), run on files a test writes.

    python dequant.py DIR

DIR/spec.json: {"rows": R, "cols": C, "dequantize": [[STEM, TYPE], ...], "quantize": [TYPE, ...]}
  - for each [STEM, TYPE] in "dequantize": reads DIR/STEM.blocks (R rows of TYPE blocks, raw
    bytes) and writes gguf-py's dequantization as DIR/STEM.ref.f32;
  - for each TYPE in "quantize": quantizes DIR/input.f32 (R x C little-endian f32) with gguf-py
    into DIR/ggufpy-TYPE.blocks and writes its dequantization as DIR/ggufpy-TYPE.ref.f32.
TYPE is a GGMLQuantizationType name (Q4_0, Q4_K, ...). gguf-py must be on PYTHONPATH.
"""

import json
import sys
from pathlib import Path

import numpy as np
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType
from gguf.quants import dequantize, quantize


def main() -> None:
    d = Path(sys.argv[1])
    spec = json.loads((d / "spec.json").read_text())
    rows, cols = spec["rows"], spec["cols"]
    for stem, name in spec["dequantize"]:
        t = GGMLQuantizationType[name]
        block, size = GGML_QUANT_SIZES[t]
        raw = np.fromfile(d / f"{stem}.blocks", dtype=np.uint8).reshape(rows, cols // block * size)
        with np.errstate(all="ignore"):  # random bytes may hold inf/NaN scales
            dequantize(raw, t).astype("<f4").tofile(d / f"{stem}.ref.f32")
    x = np.fromfile(d / "input.f32", dtype="<f4").reshape(rows, cols)
    for name in spec["quantize"]:
        t = GGMLQuantizationType[name]
        blocks = quantize(x, t)
        blocks.tofile(d / f"ggufpy-{name}.blocks")
        dequantize(blocks, t).astype("<f4").tofile(d / f"ggufpy-{name}.ref.f32")


if __name__ == "__main__":
    main()
