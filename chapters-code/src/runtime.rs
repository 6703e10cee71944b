//! How the process uses the CPU: three settings that together make a LoRA step on 2 cores
//! about 1.4× faster (measured with `cargo run --example bench_train_step`, SmolLM2-135M,
//! 4 × 128 tokens: 260 → 360 tokens/s).
//!
//! The first is the library's own business: `train` and `evaluate` run on the pool. The other
//! two change the whole process, so only a program's `main` applies them, by calling
//! [`configure`] (the `lora` CLI and the timing examples do).
//!
//! * **Compute runs on a rayon worker** ([`install`]). candle's matmul hands each GEMM to
//!   rayon; called from an outside thread, every one of the ~1,500 GEMMs of a step wakes two
//!   workers and puts the caller to sleep. From inside the pool the calling thread is one of
//!   the two that compute.
//! * **Big buffers stay in the heap** ([`configure`]). glibc maps every allocation over
//!   128 KiB–32 MiB afresh and unmaps it on free, so each activation costs page faults and
//!   the kernel zeroing its pages (a third of a step's CPU time was spent there). Raising the
//!   mmap and trim thresholds lets freed buffers be reused.
//! * **candle's element-wise worker parks sooner** ([`configure`]). Its default of 25,000
//!   spins after each element-wise op keeps a core busy while the next GEMM wants both.
//!
//! None of this changes a single number the model computes.

use std::sync::{Once, OnceLock};

/// candle's element-wise worker spins this many times before parking (its default is 25,000).
const SPIN_LIMIT: &str = "2000";
/// Allocations up to this size come from the heap rather than their own mapping (glibc's
/// largest allowed value).
const MMAP_THRESHOLD: i32 = 32 << 20;
/// Free memory at the top of the heap is returned to the system only past this size.
const TRIM_THRESHOLD: i32 = 256 << 20;

/// Apply the process-wide settings once (allocator thresholds, candle's spin limit). The
/// library never calls this: they change the whole process, so the program opts in, first
/// thing in `main`, while it has one thread (the spin limit is set only then, because
/// `set_var` is unsound once other threads may read the environment).
pub fn configure() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes glibc's allocator parameters (it takes the arena locks).
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
        if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() && single_threaded() {
            // SAFETY: the process has one thread, so nothing can read the environment
            // concurrently.
            unsafe { std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", SPIN_LIMIT) };
        }
    });
}

/// Run `f` on a worker of the compute pool (see the module docs). Inside the pool already,
/// `f` just runs.
pub fn install<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    match pool() {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

/// Give freed heap memory back to the system, so that the next peak-RSS measurement starts
/// from what is really in use.
pub fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// One pool for all compute, as many threads as candle's GEMM uses (`RAYON_NUM_THREADS`, or
/// the cores). `None` if the threads cannot be started; then work runs where it is called.
fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(candle_core::utils::get_num_threads())
            .thread_name(|i| format!("lorakit-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

/// True when this process runs a single thread (Linux; elsewhere assumed not).
fn single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task").map(|d| d.count() == 1).unwrap_or(false)
}

/// Peak resident memory of this process so far (Linux), in MiB.
pub fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}

/// Resident memory of this process now (Linux), in MiB.
pub fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

/// A `/proc/self/status` line's kB value in MiB (0 where there is none).
fn status_mib(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Reset the kernel's peak-RSS mark (Linux ≥ 4.0), so the next `peak_rss_mib` is the peak
/// of what follows, not of the whole process. Returns false where that is not possible.
pub fn reset_peak_rss() -> bool {
    // Freed heap kept for reuse (see runtime) would otherwise count towards the next peak.
    release_memory();
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}
