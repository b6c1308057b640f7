//! Which of matrixmultiply's sgemm kernels is faster for each of the
//! trainer's products, on one thread: AVX-512F (8×32 tiles) or AVX2+FMA
//! (8×8). Both give the same bits (`gemm::tests::kernels_are_bit_identical`).
//!
//! ```sh
//! cargo run --release --example kernel_choice [ROUNDS]
//! ```
//!
//! Each round times a burst of ~20 ms of calls with each kernel, back to
//! back, alternating which goes first; the table gives the median GFLOP/s of
//! each and the median over rounds of the per-round ratio, so a slow spell
//! of a shared machine hits both sides of a ratio alike.

use std::hint::black_box;
use std::time::Instant;

use simplenn::gemm::{avx512_kernel_available, gemm_with, Beta, Kernels, MatMut, MatRef};

/// How an operand is stored: as used, or transposed (a stride swap).
#[derive(Clone, Copy)]
enum Op {
    Plain,
    T,
}

struct Shape {
    name: &'static str,
    m: usize,
    k: usize,
    n: usize,
    a: Op,
    b: Op,
    beta: Beta,
}

const fn shape(
    name: &'static str,
    (m, k, n): (usize, usize, usize),
    a: Op,
    b: Op,
    beta: Beta,
) -> Shape {
    Shape {
        name,
        m,
        k,
        n,
        a,
        b,
        beta,
    }
}

/// Batch-128 products of the 784-256-10 and 784-1024-1024-10 networks, with
/// the trainer's layouts: `W1ᵀ` stored `(in, out)`, every later layer's `W`
/// stored `(out, in)` (so `z = a·Wᵀ` reads it transposed and `da = dz·W`
/// plainly), transposed activations by strides. Weight gradients
/// take the momentum as β.
const SHAPES: [Shape; 13] = [
    shape(
        "z1 x·W1ᵀ",
        (128, 784, 256),
        Op::Plain,
        Op::Plain,
        Beta::Overwrite,
    ),
    shape(
        "z2 a1·W2ᵀ",
        (128, 256, 10),
        Op::Plain,
        Op::T,
        Beta::Overwrite,
    ),
    shape(
        "da1 dz2·W2",
        (128, 10, 256),
        Op::Plain,
        Op::Plain,
        Beta::Overwrite,
    ),
    shape(
        "dW2 dz2ᵀ·a1",
        (10, 128, 256),
        Op::T,
        Op::Plain,
        Beta::Scale(0.9),
    ),
    shape(
        "dW1ᵀ xᵀ·dz1",
        (784, 128, 256),
        Op::T,
        Op::Plain,
        Beta::Scale(0.9),
    ),
    shape(
        "z1 x·W1ᵀ",
        (128, 784, 1024),
        Op::Plain,
        Op::Plain,
        Beta::Overwrite,
    ),
    shape(
        "z2 a1·W2ᵀ",
        (128, 1024, 1024),
        Op::Plain,
        Op::T,
        Beta::Overwrite,
    ),
    shape(
        "da1 dz2·W2",
        (128, 1024, 1024),
        Op::Plain,
        Op::Plain,
        Beta::Overwrite,
    ),
    shape(
        "z3 a2·W3ᵀ",
        (128, 1024, 10),
        Op::Plain,
        Op::T,
        Beta::Overwrite,
    ),
    shape(
        "da2 dz3·W3",
        (128, 10, 1024),
        Op::Plain,
        Op::Plain,
        Beta::Overwrite,
    ),
    shape(
        "dW2 dz2ᵀ·a1",
        (1024, 128, 1024),
        Op::T,
        Op::Plain,
        Beta::Scale(0.9),
    ),
    shape(
        "dW1ᵀ xᵀ·dz1",
        (784, 128, 1024),
        Op::T,
        Op::Plain,
        Beta::Scale(0.9),
    ),
    shape(
        "dW3 dz3ᵀ·a2",
        (10, 128, 1024),
        Op::T,
        Op::Plain,
        Beta::Scale(0.9),
    ),
];

fn filled(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

fn view(data: &[f32], rows: usize, cols: usize, op: Op) -> MatRef<'_> {
    match op {
        Op::Plain => MatRef::new(data, rows, cols),
        Op::T => MatRef::new(data, cols, rows).t(),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let rounds: usize = match std::env::args().nth(1).map(|s| s.parse::<usize>()) {
        None => 15,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => {
            eprintln!("kernel_choice: ROUNDS is a whole number of at least 1 (e.g. 15)");
            std::process::exit(2);
        }
    };
    if !avx512_kernel_available() {
        println!("kernel_choice: no AVX-512F kernel on this CPU/build; nothing to compare");
        return;
    }
    println!("1 thread, {rounds} rounds of ~20 ms per kernel per shape; medians");
    println!();
    println!("| product | m×k×n | A, B | AVX-512 GFLOP/s | AVX2+FMA GFLOP/s | AVX-512 / AVX2 |");
    println!("|---|---|---|---:|---:|---:|");
    for s in &SHAPES {
        let (m, k, n) = (s.m, s.k, s.n);
        let a = filled(m * k, 1);
        let b = filled(k * n, 2);
        let mut c = filled(m * n, 3);
        let (av, bv) = (view(&a, m, k, s.a), view(&b, k, n, s.b));
        let flop = 2.0 * (m * k * n) as f64;
        let mut call = |kernels: Kernels| {
            gemm_with(kernels, av, bv, s.beta, MatMut::new(&mut c, m, n));
            black_box(&mut c);
        };
        // Warm up both, and size a burst to ~20 ms.
        let t = Instant::now();
        for _ in 0..5 {
            call(Kernels::Best);
            call(Kernels::NoAvx512);
        }
        let per_call = t.elapsed().as_secs_f64() / 10.0;
        let reps = ((0.02 / per_call) as usize).max(1);
        let mut time = |kernels: Kernels| {
            let t = Instant::now();
            for _ in 0..reps {
                call(kernels);
            }
            flop * reps as f64 / t.elapsed().as_secs_f64() * 1e-9
        };
        let (mut wide, mut narrow, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..rounds {
            let (w, n) = if r % 2 == 0 {
                let w = time(Kernels::Best);
                (w, time(Kernels::NoAvx512))
            } else {
                let n = time(Kernels::NoAvx512);
                (time(Kernels::Best), n)
            };
            wide.push(w);
            narrow.push(n);
            ratio.push(w / n);
        }
        let layout = |op| match op {
            Op::Plain => "·",
            Op::T => "ᵀ",
        };
        println!(
            "| {} | {m}×{k}×{n} | {}, {} | {:.1} | {:.1} | {:.2} |",
            s.name,
            layout(s.a),
            layout(s.b),
            median(&mut wide),
            median(&mut narrow),
            median(&mut ratio),
        );
    }
}
