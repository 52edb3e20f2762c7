//! Shared helpers for the end-to-end tests and benches (the root package's library).
//!
//! - [`bench_root`]: where benches put their temp files.
//! - [`Rng`]: a dependency-free PRNG for payloads and random offsets.

use std::path::PathBuf;

/// Parent of the benches' temp dirs: `WARREN_BENCH_DIR`, or `target/bench-tmp` in
/// the workspace. Created if missing. It must be a real disk (not a tmpfs) for the
/// figures to mean anything; the throughput bench checks.
///
/// # Errors
/// The directory cannot be created.
pub fn bench_root() -> std::io::Result<PathBuf> {
    let root = std::env::var_os("WARREN_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-tmp"));
    std::fs::create_dir_all(&root)?;
    Ok(root)
}

/// xorshift64*: a dependency-free PRNG for payloads and random offsets. Not for
/// anything that needs real randomness.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    #[expect(clippy::should_implement_trait, reason = "not an Iterator: never ends")]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let r = self.next().to_le_bytes();
            if let Some(src) = r.get(..chunk.len()) {
                chunk.copy_from_slice(src);
            }
        }
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
