//! Writing GGUF files: tensor types, metadata values, and an atomic write.
//!
//! candle's `gguf_file::write` does the encoding. It stamps version 2; we stamp 3, which is
//! what llama.cpp's own converters write. The two versions differ only for big-endian
//! files, so the bytes after the header are the same.

use crate::io::atomic_write_with;
use anyhow::{Context, Result, bail};
use candle_core::Tensor;
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

/// The storage types an export can use for its matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum ExportDtype {
    F32,
    F16,
    #[cfg_attr(feature = "clap", value(name = "q8_0"))]
    #[serde(rename = "q8_0")]
    Q8_0,
    #[cfg_attr(feature = "clap", value(name = "q4_0"))]
    #[serde(rename = "q4_0")]
    Q4_0,
}

impl ExportDtype {
    pub fn ggml(self) -> GgmlDType {
        match self {
            Self::F32 => GgmlDType::F32,
            Self::F16 => GgmlDType::F16,
            Self::Q8_0 => GgmlDType::Q8_0,
            Self::Q4_0 => GgmlDType::Q4_0,
        }
    }

    /// llama.cpp's `general.file_type` (enum `llama_ftype`) for a model mostly in this type.
    pub fn file_type(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q8_0 => 7,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Q8_0 => "q8_0",
            Self::Q4_0 => "q4_0",
        }
    }
}

/// The type one tensor is stored in, following llama.cpp's converter: vectors (norms,
/// rope factors) stay F32; a matrix whose rows do not split into quantization blocks
/// falls back to F16.
pub fn tensor_type(tensor: &Tensor, want: ExportDtype) -> GgmlDType {
    if tensor.rank() < 2 {
        return GgmlDType::F32;
    }
    let ggml = want.ggml();
    let cols = tensor.dims().last().copied().unwrap_or(0);
    if cols % ggml.block_size() != 0 { GgmlDType::F16 } else { ggml }
}

/// Convert a tensor to the stored type (`name` is only for the error message).
pub fn to_qtensor(name: &str, tensor: &Tensor, ty: GgmlDType) -> Result<QTensor> {
    QTensor::quantize(tensor, ty).with_context(|| format!("tensor {name}: cannot store as {ty:?}"))
}

/// Metadata helpers with the value types llama.cpp's converters use.
pub fn u32v(v: usize) -> Value {
    Value::U32(v as u32)
}
pub fn f32v(v: f64) -> Value {
    Value::F32(v as f32)
}
pub fn strv(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

/// Write a GGUF file atomically: nothing appears under `path` unless the whole file was
/// written. Tensor names must be unique.
pub fn write_gguf(path: &Path, metadata: &[(String, Value)], tensors: &[(String, QTensor)]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for (name, _) in tensors {
        if !seen.insert(name) {
            bail!("internal error: tensor {name} written twice")
        }
    }
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    atomic_write_with(path, |tmp| {
        let file = std::fs::File::create(tmp)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        gguf_file::write(&mut w, &md, &ts)?;
        w.seek(SeekFrom::Start(4))?;
        w.write_all(&3u32.to_le_bytes())?;
        w.flush()?;
        Ok(())
    })
}
