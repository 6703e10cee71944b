//! Exports against what llama.cpp's own converters wrote for the same inputs
//! (`../shared/fixtures/tiny-llama-gguf`): the GGUF adapters and the merged model must match
//! tensor for tensor (names, shapes, types, values) with the same metadata; the PEFT export
//! must round-trip the PEFT fixture.

use lora_book::*;
use lorakit::candle::quantized::gguf_file::{Content, Value};
use lorakit::candle::{DType, Device, Tensor};
use lorakit::export::{ExportDtype, ExportFormat, ExportRequest, export};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

struct Gguf {
    content: Content,
    tensors: BTreeMap<String, (Vec<usize>, String, Vec<f64>)>,
}

/// Every key and tensor of a GGUF file (tensors dequantized to f64, shape in ggml order).
fn read_gguf(path: &Path) -> Gguf {
    let mut f = std::fs::File::open(path).unwrap();
    let content = Content::read(&mut f).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut tensors = BTreeMap::new();
    for (name, info) in &content.tensor_infos {
        let q = content.tensor(&mut f, name, &Device::Cpu).unwrap();
        let mut ne = info.shape.dims().to_vec();
        ne.reverse();
        let t = q.dequantize(&Device::Cpu).unwrap();
        tensors.insert(name.clone(), (ne, format!("{:?}", info.ggml_dtype), tensor_f64(&t)));
    }
    Gguf { content, tensors }
}

fn version(path: &Path) -> u32 {
    let b = std::fs::read(path).unwrap();
    u32::from_le_bytes([b[4], b[5], b[6], b[7]])
}

fn run(
    model: &Path,
    adapter: &Path,
    format: ExportFormat,
    dtype: ExportDtype,
    out: &Path,
    vocab_from: Option<PathBuf>,
) {
    let req = ExportRequest {
        dtype: Some(dtype),
        vocab_from,
        ..ExportRequest::new(model.display().to_string(), adapter, format, out)
    };
    let report = export(&req).unwrap();
    assert!(!report.files.is_empty() && report.files.iter().all(|f| f.bytes > 0 && f.sha256.len() == 64));
}

/// Same tensor set, ggml shapes and types; values within `atol`.
fn same_tensors(what: &str, ours: &Gguf, theirs: &Gguf, atol: f64) {
    let names = |g: &Gguf| g.tensors.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(ours), names(theirs), "{what}: tensor names");
    let mut worst = 0.0f64;
    for (name, (ne, ty, vals)) in &theirs.tensors {
        let (o_ne, o_ty, o_vals) = &ours.tensors[name];
        assert_eq!(o_ne, ne, "{what}: {name} shape (ggml ne)");
        assert_eq!(o_ty, ty, "{what}: {name} type");
        let (d, i) = max_abs_diff(o_vals, vals);
        assert!(d <= atol, "{what}: {name} differs by {d:.3e} at {i}");
        worst = worst.max(d);
    }
    eprintln!("{what}: {} tensors, max |diff| {worst:.3e}", theirs.tensors.len());
}

fn value_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| value_eq(p, q)),
        (Value::String(x), Value::String(y)) => x == y,
        (Value::F32(x), Value::F32(y)) => x == y,
        _ => format!("{a:?}") == format!("{b:?}"),
    }
}

/// The listed keys have equal values (and types) in both files.
fn same_keys(what: &str, ours: &Gguf, theirs: &Gguf, keys: &[&str]) {
    for k in keys {
        let (o, t) = (ours.content.metadata.get(*k), theirs.content.metadata.get(*k));
        let t = t.unwrap_or_else(|| panic!("{what}: the fixture has no {k}"));
        let o = o.unwrap_or_else(|| panic!("{what}: our file lacks {k}"));
        assert!(value_eq(o, t), "{what}: {k} = {o:?}, llama.cpp's converter wrote {t:?}");
    }
}

/// Every key the fixture has except the descriptive ones is present and equal.
fn all_model_keys(theirs: &Gguf) -> Vec<&str> {
    let mut keys: Vec<&str> = theirs
        .content
        .metadata
        .keys()
        .map(String::as_str)
        .filter(|k| !matches!(*k, "general.name" | "general.size_label"))
        .collect();
    keys.sort();
    keys
}

const ADAPTER_KEYS: [&str; 5] =
    ["general.architecture", "general.type", "adapter.type", "adapter.lora.alpha", "general.quantization_version"];

#[test]
fn gguf_adapter_equals_llama_cpp_converter() {
    let dir = tempfile::tempdir().unwrap();
    for (peft, theirs) in
        [("tiny-peft", "tiny-peft-f32.lora.gguf"), ("tiny-peft-rslora", "tiny-peft-rslora-f32.lora.gguf")]
    {
        let theirs = read_gguf(&fixture("tiny-llama-gguf").join(theirs));
        // The same adapter file results whether the base is the HF directory or its GGUF.
        for base in [fixture("tiny-llama"), fixture("tiny-llama-gguf/tiny-llama-f32.gguf")] {
            let out = dir.path().join(format!("{peft}-{}.gguf", base.file_stem().unwrap().to_string_lossy()));
            run(&base, &fixture(peft), ExportFormat::GgufAdapter, ExportDtype::F32, &out, None);
            assert_eq!(version(&out), 3);
            let ours = read_gguf(&out);
            same_tensors(peft, &ours, &theirs, 1e-6);
            same_keys(peft, &ours, &theirs, &ADAPTER_KEYS);
        }
    }
}

#[test]
fn merged_gguf_equals_llama_cpp_converter() {
    let dir = tempfile::tempdir().unwrap();
    let theirs = read_gguf(&fixture("tiny-llama-gguf/tiny-peft-merged-f32.gguf"));
    let keys = all_model_keys(&theirs);
    // From the GGUF base (its metadata is copied) ...
    let out = dir.path().join("from-gguf.gguf");
    run(
        &fixture("tiny-llama-gguf/tiny-llama-f32.gguf"),
        &fixture("tiny-peft"),
        ExportFormat::Gguf,
        ExportDtype::F32,
        &out,
        None,
    );
    let ours = read_gguf(&out);
    same_tensors("merged from GGUF base", &ours, &theirs, 1e-6);
    same_keys("merged from GGUF base", &ours, &theirs, &keys);
    // ... and from the HF directory (config.json translated; the fixture has no tokenizer,
    // so the vocabulary comes from the converter's GGUF).
    let out = dir.path().join("from-hf.gguf");
    let vocab = fixture("tiny-llama-gguf/tiny-llama-f32.gguf");
    run(&fixture("tiny-llama"), &fixture("tiny-peft"), ExportFormat::Gguf, ExportDtype::F32, &out, Some(vocab));
    let ours = read_gguf(&out);
    same_tensors("merged from HF base", &ours, &theirs, 1e-6);
    same_keys("merged from HF base", &ours, &theirs, &keys);
}

#[test]
fn llama3_base_gets_rope_freqs_and_no_output() {
    // tiny-llama3 has tiny-llama's shapes, so tiny-peft applies; the rope keys and the
    // rope_freqs tensor must be what the converter wrote for tiny-llama3.
    let dir = tempfile::tempdir().unwrap();
    let theirs = read_gguf(&fixture("tiny-llama-gguf/tiny-llama3-f32.gguf"));
    let out = dir.path().join("llama3.gguf");
    let vocab = fixture("tiny-llama-gguf/tiny-llama3-f32.gguf");
    run(&fixture("tiny-llama3"), &fixture("tiny-peft"), ExportFormat::Gguf, ExportDtype::F32, &out, Some(vocab));
    let ours = read_gguf(&out);
    let names = |g: &Gguf| g.tensors.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&ours), names(&theirs), "tensor set (rope_freqs, no output.weight)");
    let (_, ty, freqs) = &ours.tensors["rope_freqs.weight"];
    assert_eq!(ty, "F32");
    assert_close("rope_freqs", freqs, &theirs.tensors["rope_freqs.weight"].2, 1e-6);
    same_keys("llama3", &ours, &theirs, &all_model_keys(&theirs));
}

#[test]
fn f16_and_q8_0_types_follow_llama_cpp() {
    let dir = tempfile::tempdir().unwrap();
    let f32_ref = read_gguf(&fixture("tiny-llama-gguf/tiny-peft-merged-f32.gguf"));
    for (dtype, ty, file_type, atol) in [(ExportDtype::F16, "F16", 1u32, 2e-3), (ExportDtype::Q8_0, "Q8_0", 7, 2e-2)] {
        let out = dir.path().join(format!("{}.gguf", dtype.name()));
        run(
            &fixture("tiny-llama-gguf/tiny-llama-f32.gguf"),
            &fixture("tiny-peft"),
            ExportFormat::Gguf,
            dtype,
            &out,
            None,
        );
        let ours = read_gguf(&out);
        assert!(matches!(ours.content.metadata["general.file_type"], Value::U32(v) if v == file_type));
        for (name, (ne, t, vals)) in &ours.tensors {
            // Vectors (norms) stay F32, as llama.cpp's converter keeps them.
            let want = if ne.len() == 1 { "F32" } else { ty };
            assert_eq!(t, want, "{name}");
            let (d, _) = max_abs_diff(vals, &f32_ref.tensors[name].2);
            assert!(d <= atol, "{name}: {} error {d:.3e}", dtype.name());
        }
    }
}

#[test]
fn peft_export_round_trips_the_fixture() {
    let dir = tempfile::tempdir().unwrap();
    for peft in ["tiny-peft", "tiny-peft-rslora"] {
        let out = dir.path().join(peft);
        run(&fixture("tiny-llama"), &fixture(peft), ExportFormat::Peft, ExportDtype::F32, &out, None);
        let load =
            |p: &Path| lorakit::candle::safetensors::load(p.join("adapter_model.safetensors"), &Device::Cpu).unwrap();
        let (ours, theirs) = (load(&out), load(&fixture(peft)));
        let mut names: Vec<_> = ours.keys().collect();
        names.sort();
        let mut want: Vec<_> = theirs.keys().collect();
        want.sort();
        assert_eq!(names, want, "{peft}: tensor names");
        for (k, t) in &theirs {
            let o: &Tensor = &ours[k];
            assert_eq!(o.dims(), t.dims(), "{k}");
            assert_eq!(o.dtype(), DType::F32);
            assert_eq!(tensor_f64(o), tensor_f64(t), "{peft}: {k} is not bit-identical");
        }
        let cfg = |p: &Path| read_json(&p.join("adapter_config.json")).unwrap();
        let (ours, theirs) = (cfg(&out), cfg(&fixture(peft)));
        // PEFT sorts nothing; compare target_modules as a set.
        let set = |v: &serde_json::Value| {
            let mut s: Vec<String> = v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect();
            s.sort();
            s
        };
        assert_eq!(set(&ours["target_modules"]), set(&theirs["target_modules"]));
        let obj = theirs.as_object().unwrap();
        for (k, v) in obj.iter().filter(|(k, _)| *k != "target_modules") {
            assert_eq!(&ours[k], v, "{peft}: adapter_config.json key {k}");
        }
        assert_eq!(ours.as_object().unwrap().len(), obj.len(), "{peft}: same keys");
    }
}
