//! The machine's AVX2+FMA FP32 peak: independent chains of 8-wide FMAs, one
//! kernel per thread of a 1- and a 2-thread pool. Throughput in FLOP.

mod common;

use common::{pool, tid, THREADS};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

/// Independent accumulators: more than FMA latency × FMA ports (4 × 2), and
/// few enough to stay in the 16 ymm registers with the two operands.
const CHAINS: usize = 12;
/// FMA rounds per call.
const ROUNDS: u64 = 1_000_000;
/// FLOP per call: rounds × chains × 8 lanes × (multiply + add).
const FLOP: u64 = ROUNDS * CHAINS as u64 * 8 * 2;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_chains(rounds: u64, seed: f32) -> f32 {
    use std::arch::x86_64::*;
    let a = _mm256_set1_ps(black_box(0.999_999));
    let b = _mm256_set1_ps(black_box(1e-7));
    let mut acc = [_mm256_set1_ps(seed); CHAINS];
    for _ in 0..rounds {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_ps(*v, a, b);
        }
    }
    let mut s = acc[0];
    for v in &acc[1..] {
        s = _mm256_add_ps(s, *v);
    }
    _mm256_cvtss_f32(s)
}

/// One thread's run of the FMA chains, or `None` without AVX2+FMA.
fn kernel(seed: f32) -> Option<f32> {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above, which
        // is all `fma_chains` requires.
        return Some(unsafe { fma_chains(black_box(ROUNDS), seed) });
    }
    let _ = seed;
    None
}

fn peak(c: &mut Criterion) {
    if kernel(1.0).is_none() {
        eprintln!("peak: no AVX2+FMA on this CPU; skipped");
        return;
    }
    let mut group = c.benchmark_group("peak");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for t in THREADS {
        let pool = pool(t);
        group.throughput(Throughput::Elements(FLOP * t as u64));
        group.bench_function(BenchmarkId::new("fma", tid(t)), |b| {
            b.iter(|| pool.broadcast(|ctx| kernel(ctx.index() as f32 + 1.0)))
        });
    }
    group.finish();
}

criterion_group!(benches, peak);
criterion_main!(benches);
