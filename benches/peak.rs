//! The machine's FP32 peak: independent chains of FMAs of the widest vector
//! the CPU has (AVX-512F, else AVX2+FMA), one kernel per thread of a 1- and
//! a 2-thread pool. Throughput in FLOP.
//!
//! `peak/fma/Nt` is the best ISA's peak (the one every "% of peak" divides
//! by; the ISA is printed, and written to `criterion/peak/fma/isa.txt` for
//! `perf_table`). Where that is AVX-512F, `peak/fma256/Nt` also measures
//! the AVX2+FMA ceiling, the bound of matrixmultiply's 8×8 kernel.
//!
//! The AVX-512 kernel needs Rust 1.89 (AVX-512 intrinsics).

mod common;

use common::{criterion_dir, pool, threads, tid};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

/// FMA rounds per call.
const ROUNDS: u64 = 1_000_000;
/// Independent 256-bit accumulators: more than FMA latency × FMA ports
/// (4 × 2), and few enough to stay in the 16 ymm registers with the two
/// operands.
const CHAINS_256: usize = 12;
/// Independent 512-bit accumulators: as many again as 4 × 2 needs, three
/// times over, in 26 of the 32 zmm registers with the two operands.
const CHAINS_512: usize = 24;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Isa {
    Avx512,
    Avx2Fma,
}

impl Isa {
    fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "AVX-512F",
            Isa::Avx2Fma => "AVX2+FMA",
        }
    }

    /// FLOP per call: rounds × chains × lanes × (multiply + add).
    fn flop(self) -> u64 {
        let (chains, lanes) = match self {
            Isa::Avx512 => (CHAINS_512, 16),
            Isa::Avx2Fma => (CHAINS_256, 8),
        };
        ROUNDS * chains as u64 * lanes * 2
    }

    fn available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Isa::Avx512 => is_x86_feature_detected!("avx512f"),
                Isa::Avx2Fma => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// The widest FMA this CPU has, if any.
    fn best() -> Option<Isa> {
        [Isa::Avx512, Isa::Avx2Fma]
            .into_iter()
            .find(|isa| isa.available())
    }

    /// One thread's run of the FMA chains. Panics if `!self.available()`.
    fn kernel(self, seed: f32) -> f32 {
        assert!(self.available(), "{} not available", self.name());
        #[cfg(target_arch = "x86_64")]
        match self {
            // SAFETY: the CPU supports AVX-512F, asserted just above, which
            // is all `fma512_chains` requires.
            Isa::Avx512 => unsafe { fma512_chains(black_box(ROUNDS), seed) },
            // SAFETY: the CPU supports AVX2 and FMA, asserted just above,
            // which is all `fma256_chains` requires.
            Isa::Avx2Fma => unsafe { fma256_chains(black_box(ROUNDS), seed) },
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("{seed}")
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma256_chains(rounds: u64, seed: f32) -> f32 {
    use std::arch::x86_64::*;
    let a = _mm256_set1_ps(black_box(0.999_999));
    let b = _mm256_set1_ps(black_box(1e-7));
    let mut acc = [_mm256_set1_ps(seed); CHAINS_256];
    for _ in 0..rounds {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_ps(*v, a, b);
        }
    }
    let mut s = acc[0];
    for v in &acc[1..] {
        s = _mm256_add_ps(s, *v);
    }
    // All lanes stay live: were only lane 0 used, LLVM could narrow the sum.
    _mm256_cvtss_f32(black_box(s))
}

// AVX-512 intrinsics are stable from Rust 1.89, above the crate's MSRV: this
// bench needs 1.89, as does matrixmultiply's AVX-512 kernel (older compilers
// build the library without it).
#[allow(clippy::incompatible_msrv)]
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma512_chains(rounds: u64, seed: f32) -> f32 {
    use std::arch::x86_64::*;
    let a = _mm512_set1_ps(black_box(0.999_999));
    let b = _mm512_set1_ps(black_box(1e-7));
    let mut acc = [_mm512_set1_ps(seed); CHAINS_512];
    for _ in 0..rounds {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_ps(*v, a, b);
        }
    }
    let mut s = acc[0];
    for v in &acc[1..] {
        s = _mm512_add_ps(s, *v);
    }
    // All lanes stay live: with only lane 0 used, LLVM narrows the final sum
    // to scalar adds and then keeps 8 of the 24 accumulators on the stack.
    _mm512_cvtss_f32(black_box(s))
}

/// Records which ISA `peak/fma` measured, beside criterion's results.
fn write_isa(isa: Isa) {
    let dir = criterion_dir().join("peak/fma");
    if let Err(e) =
        std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(dir.join("isa.txt"), isa.name()))
    {
        eprintln!("cannot write {}: {e}", dir.display());
    }
}

fn peak(c: &mut Criterion) {
    common::stamp_cpu();
    let Some(best) = Isa::best() else {
        eprintln!("peak: neither AVX-512F nor AVX2+FMA on this CPU; skipped");
        return;
    };
    println!("peak/fma: {} FMA chains", best.name());
    write_isa(best);
    let mut runs = vec![("fma", best)];
    if best == Isa::Avx512 && Isa::Avx2Fma.available() {
        runs.push(("fma256", Isa::Avx2Fma));
    }
    let mut group = c.benchmark_group("peak");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, isa) in runs {
        for t in threads() {
            let pool = pool(t);
            // `threads()` keeps only counts the pool really runs.
            assert_eq!(pool.current_num_threads(), t);
            group.throughput(Throughput::Elements(isa.flop() * t as u64));
            group.bench_function(BenchmarkId::new(name, tid(t)), |b| {
                b.iter(|| pool.broadcast(|ctx| isa.kernel(ctx.index() as f32 + 1.0)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, peak);
criterion_main!(benches);
