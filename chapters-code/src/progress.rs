//! How the library reports what it is doing: through callbacks the caller passes in. It never
//! prints; the `lora` CLI turns these into stderr lines and progress bars.

/// A sink for one-line messages such as "downloading …" (no trailing newline).
pub type Log<'a> = &'a dyn Fn(&str);

/// A [`Log`] that drops every message.
pub fn silent(_: &str) {}

/// Progress through a long read (hashing or uploading a file), for a caller that draws a bar.
/// Shared across threads, because an upload's body is read on the HTTP client's side.
pub trait Bytes: Send + Sync {
    /// A read of `total` bytes starts; `what` says what it is ("uploading model.gguf").
    fn start(&self, what: &str, total: u64);
    /// `n` more bytes were read.
    fn advance(&self, n: u64);
    /// The read ended (done or failed).
    fn finish(&self);
}

/// [`Bytes`] that shows nothing.
pub struct NoBytes;

impl Bytes for NoBytes {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// A reader that reports every read to a [`Bytes`].
pub struct ProgressRead<R> {
    inner: R,
    progress: std::sync::Arc<dyn Bytes>,
}

impl<R> ProgressRead<R> {
    /// Report `what` (`total` bytes) as it is read from `inner`.
    pub fn new(inner: R, what: &str, total: u64, progress: std::sync::Arc<dyn Bytes>) -> Self {
        progress.start(what, total);
        ProgressRead { inner, progress }
    }
}

impl<R: std::io::Read> std::io::Read for ProgressRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

impl<R> Drop for ProgressRead<R> {
    fn drop(&mut self) {
        self.progress.finish();
    }
}
