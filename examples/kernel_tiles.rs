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
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F, checked on the line above.
        unsafe { run(rounds) };
        return;
    }
    let _ = rounds;
    println!("kernel_tiles: this CPU has no AVX-512F; nothing to compare");
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run(rounds: usize) {
    // Packed B: 1024 columns in panels of KC × NR; packed A: 64 rows in
    // panels of KC × MR (the same bytes serve both tiles).
    let b: Vec<f32> = (0..KC * 1024 + 16).map(|i| (i % 5) as f32 * 0.01).collect();
    let a: Vec<f32> = (0..KC * 64 + 16).map(|i| (i % 7) as f32 * 0.01).collect();
    let (b0, a0) = (b.as_ptr().align_offset(64), a.as_ptr().align_offset(64));
    let mut c = vec![0f32; 512];
    for (name, mr, nr) in [("16x16", 16, 16), ("8x32", 8, 32)] {
        for (place, a_panels, b_panels) in [("L1", 1, 1), ("L2", 64 / mr, 1024 / nr)] {
            let mut rates = Vec::new();
            for _ in 0..rounds {
                let reps = if place == "L1" { 4000 } else { 20 };
                let start = Instant::now();
                for _ in 0..reps {
                    for j in 0..b_panels {
                        for i in 0..a_panels {
                            // SAFETY: panel i of A and j of B lie inside `a` and `b`
                            // (i·KC·MR + KC·MR ≤ 64·KC, j·KC·NR + KC·NR ≤ 1024·KC,
                            // past the 64-byte alignment offset of at most 15), and
                            // `c` holds MR·NR = 256 floats.
                            unsafe {
                                let ap = a.as_ptr().add(a0 + i * KC * mr);
                                let bp = b.as_ptr().add(b0 + j * KC * nr);
                                if mr == 16 {
                                    tile_16x16(ap, bp, c.as_mut_ptr());
                                } else {
                                    tile_8x32(ap, bp, c.as_mut_ptr());
                                }
                            }
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
