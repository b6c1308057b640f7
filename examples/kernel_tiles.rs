//! Why simplenn's matrixmultiply patch changed the AVX-512 kernel's register
//! tile from 16×16 to 8×32: the two microkernel loops alone, on packed panels
//! that sit in L1 (one pair, reused) and in L2 (a 256×1024 block of B and a
//! 64×256 block of A, as in a 128×1024×1024 product), one thread.
//!
//! ```sh
//! cargo run --release --example kernel_tiles [ROUNDS]
//! ```
//!
//! Both loops are the kernels' inner `k` loops (one FMA per element per
//! `k`); the 16×16 tile broadcasts 16 elements of A against one vector of B
//! (17 loads per 16 FMAs), the 8×32 tile 8 elements against two vectors (10
//! loads per 16 FMAs). GFLOP/s of each, per round, best and median; compare
//! with `cargo bench --bench peak`.
//!
//! Where the CPU has AVX2 and FMA it also times the AVX2+FMA kernel's loop
//! (matrixmultiply's 8×8 tile: one vector of A, two 128-bit broadcasts of
//! B and three in-register permutes per 8 FMAs) beside a 6×16 tile in the
//! 8×32 tile's manner (two vectors of B, six broadcasts of A: 8 loads per
//! 12 FMAs), the question an AVX2-only CPU asks: is its kernel's loop what
//! keeps its products from the peak? (On the seventy-fourth session's Zen
//! 3 it was not: docs/performance-log.md.)

use std::time::Instant;

const KC: usize = 256;

fn main() {
    let rounds = match std::env::args()
        .nth(1)
        .map_or(Ok(5), |r| r.parse::<usize>())
    {
        Ok(r) if r >= 1 => r,
        Ok(_) => {
            eprintln!("kernel_tiles: ROUNDS must be at least 1");
            std::process::exit(2)
        }
        Err(e) => {
            eprintln!("kernel_tiles: ROUNDS: {e}");
            std::process::exit(2)
        }
    };
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked on the line above.
            unsafe { run(rounds) };
        } else {
            println!("kernel_tiles: this CPU has no AVX-512F; AVX2+FMA tiles only");
        }
        if has!("avx2") && has!("fma") {
            // SAFETY: the CPU has AVX2 and FMA, checked on the line above.
            unsafe { run_avx2(rounds) };
            return;
        }
    }
    let _ = rounds;
    println!("kernel_tiles: this CPU has neither AVX-512F nor AVX2+FMA; nothing to compare");
}

/// Times `tile` over packed panels in L1 (one pair, reused) and in L2 (the
/// A panels of up to 64 rows, whole panels of `mr`, against the B panels of
/// 1024 columns), one thread, and prints the median and best GFLOP/s of `rounds` rounds.
///
/// Safety: `tile` must read at most `KC·mr` floats from its A pointer and
/// `KC·nr` from its B pointer and write at most `mr·nr` (≤ 512) floats to
/// its C pointer, and the CPU must have what `tile` is compiled for.
#[cfg(target_arch = "x86_64")]
unsafe fn time_tile(
    name: &str,
    rounds: usize,
    mr: usize,
    nr: usize,
    tile: unsafe fn(*const f32, *const f32, *mut f32),
) {
    let b: Vec<f32> = (0..KC * 1024 + 16).map(|i| (i % 5) as f32 * 0.01).collect();
    let a: Vec<f32> = (0..KC * 64 + 16).map(|i| (i % 7) as f32 * 0.01).collect();
    let (b0, a0) = (b.as_ptr().align_offset(64), a.as_ptr().align_offset(64));
    let mut c = vec![0f32; 512];
    for (place, a_panels, b_panels) in [("L1", 1, 1), ("L2", 64 / mr, 1024 / nr)] {
        let mut rates = Vec::new();
        for _ in 0..rounds {
            let reps = if place == "L1" { 4000 } else { 20 };
            let start = Instant::now();
            for _ in 0..reps {
                for j in 0..b_panels {
                    for i in 0..a_panels {
                        // SAFETY: panel i of A and j of B lie inside `a` and
                        // `b` (i·KC·mr + KC·mr ≤ 64·KC, j·KC·nr + KC·nr ≤
                        // 1024·KC, past an alignment offset of at most 15),
                        // `c` holds 512 floats, and the caller vouches for
                        // the CPU.
                        unsafe {
                            tile(
                                a.as_ptr().add(a0 + i * KC * mr),
                                b.as_ptr().add(b0 + j * KC * nr),
                                c.as_mut_ptr(),
                            )
                        };
                    }
                }
            }
            std::hint::black_box(&mut c);
            let flop = (reps * a_panels * b_panels * KC * mr * nr * 2) as f64;
            rates.push(flop / start.elapsed().as_secs_f64() / 1e9);
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "{name} tile, panels in {place}: median {:.1} GFLOP/s, best {:.1} ({rounds} rounds)",
            rates[rates.len() / 2],
            rates[rates.len() - 1]
        );
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2(rounds: usize) {
    // SAFETY: each tile reads KC·MR and KC·NR floats and writes MR·NR ≤ 96;
    // the caller checked AVX2 and FMA.
    unsafe {
        time_tile(
            "AVX2+FMA 8x8 (matrixmultiply's)",
            rounds,
            8,
            8,
            tile_8x8_permute,
        );
        time_tile("AVX2+FMA 6x16", rounds, 6, 16, tile_6x16);
    }
}

/// matrixmultiply's AVX2+FMA loop: A loaded as one vector and turned three
/// times in-register, B's two halves broadcast, 8 FMAs per k.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_8x8_permute(a: *const f32, b: *const f32, c: *mut f32) {
    use std::arch::x86_64::*;
    let mut ab = [_mm256_setzero_ps(); 8];
    for k in 0..KC {
        // SAFETY: the caller passes panels of KC·8 floats each and a
        // 64-float (or larger) `c`.
        unsafe {
            let av = _mm256_loadu_ps(a.add(k * 8));
            let bl = _mm256_broadcast_ps(&*(b.add(k * 8) as *const __m128));
            let bh = _mm256_broadcast_ps(&*(b.add(k * 8 + 4) as *const __m128));
            let a1 = _mm256_permute_ps::<0b00_11_10_01>(av);
            let a2 = _mm256_permute_ps::<0b01_00_11_10>(av);
            let a3 = _mm256_permute_ps::<0b10_01_00_11>(av);
            for (i, ai) in [av, a1, a2, a3].into_iter().enumerate() {
                ab[i] = _mm256_fmadd_ps(ai, bl, ab[i]);
                ab[i + 4] = _mm256_fmadd_ps(ai, bh, ab[i + 4]);
            }
        }
    }
    for (i, acc) in ab.iter().enumerate() {
        // SAFETY: as above.
        unsafe { _mm256_storeu_ps(c.add(i * 8), *acc) };
    }
}

/// 6×16: two vectors of B per k, six broadcasts of A (12 accumulators, 15
/// of the 16 ymm registers).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_6x16(a: *const f32, b: *const f32, c: *mut f32) {
    use std::arch::x86_64::*;
    let mut ab0 = [_mm256_setzero_ps(); 6];
    let mut ab1 = [_mm256_setzero_ps(); 6];
    for k in 0..KC {
        // SAFETY: the caller passes an A panel of KC·6 floats, a B panel of
        // KC·16 floats and a 96-float (or larger) `c`.
        unsafe {
            let b0 = _mm256_loadu_ps(b.add(k * 16));
            let b1 = _mm256_loadu_ps(b.add(k * 16 + 8));
            for i in 0..6 {
                let av = _mm256_broadcast_ss(&*a.add(k * 6 + i));
                ab0[i] = _mm256_fmadd_ps(av, b0, ab0[i]);
                ab1[i] = _mm256_fmadd_ps(av, b1, ab1[i]);
            }
        }
    }
    for i in 0..6 {
        // SAFETY: as above.
        unsafe {
            _mm256_storeu_ps(c.add(i * 16), ab0[i]);
            _mm256_storeu_ps(c.add(i * 16 + 8), ab1[i]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run(rounds: usize) {
    // SAFETY: each tile reads KC·MR and KC·NR floats and writes MR·NR = 256;
    // the caller checked AVX-512F.
    unsafe {
        time_tile("16x16", rounds, 16, 16, tile_16x16);
        time_tile("8x32", rounds, 8, 32, tile_8x32);
    }
}

/// 16×16: one vector of B per k, sixteen broadcasts of A.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_16x16(a: *const f32, b: *const f32, c: *mut f32) {
    use std::arch::x86_64::*;
    let mut ab = [_mm512_setzero_ps(); 16];
    for k in 0..KC {
        // SAFETY: the caller passes panels of KC·16 floats each and a
        // 256-float `c`.
        unsafe {
            let bv = _mm512_loadu_ps(b.add(k * 16));
            for (i, acc) in ab.iter_mut().enumerate() {
                *acc = _mm512_fmadd_ps(_mm512_set1_ps(*a.add(k * 16 + i)), bv, *acc);
            }
        }
    }
    for (i, acc) in ab.iter().enumerate() {
        // SAFETY: as above.
        unsafe { _mm512_storeu_ps(c.add(i * 16), *acc) };
    }
}

/// 8×32: two vectors of B per k, eight broadcasts of A.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_8x32(a: *const f32, b: *const f32, c: *mut f32) {
    use std::arch::x86_64::*;
    let mut ab0 = [_mm512_setzero_ps(); 8];
    let mut ab1 = [_mm512_setzero_ps(); 8];
    for k in 0..KC {
        // SAFETY: the caller passes an A panel of KC·8 floats, a B panel of
        // KC·32 floats and a 256-float `c`.
        unsafe {
            let b0 = _mm512_loadu_ps(b.add(k * 32));
            let b1 = _mm512_loadu_ps(b.add(k * 32 + 16));
            for i in 0..8 {
                let av = _mm512_set1_ps(*a.add(k * 8 + i));
                ab0[i] = _mm512_fmadd_ps(av, b0, ab0[i]);
                ab1[i] = _mm512_fmadd_ps(av, b1, ab1[i]);
            }
        }
    }
    for i in 0..8 {
        // SAFETY: as above.
        unsafe {
            _mm512_storeu_ps(c.add(i * 32), ab0[i]);
            _mm512_storeu_ps(c.add(i * 32 + 16), ab1[i]);
        }
    }
}
