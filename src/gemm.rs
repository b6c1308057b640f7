//! Strided matrix views and the one wrapper over `matrixmultiply::sgemm`.
//!
//! A matrix is a pointer-free view: `rows × cols` elements of a slice, where
//! element `(i, j)` sits at `i * rs + j * cs`. A transpose is a stride swap
//! ([`MatRef::t`]), never a copy.
//!
//! The entry point, [`gemm`]: `C ← A·B + β·C` on the calling thread, one
//! `sgemm` call; [`gemm_then`], the same with a callback on each block of
//! `C` as soon as it is final (the trainer's fused SGD step); and
//! [`gemm_parts`], the same product cut into disjoint row or column ranges
//! of `C`, one `gemm` per range, in parallel. The trainer
//! ([`crate::model`]) cuts most of its work itself and calls `gemm` per
//! part; `gemm_parts` serves the products it runs over a whole batch.
//!
//! Determinism: every element of `C` is computed from the same row of `A`
//! and column of `B`, accumulated over `k` in the same order, whatever the
//! cut, so the result is bit-for-bit independent of how `C` is split. Only
//! `alpha = 1` is used, for which matrixmultiply's full-tile and edge-tile
//! paths round alike (both store `AB + round(β·C)`, rounded once), so a cut
//! may also fall inside a register tile
//! (`gemm_row_cuts_anywhere_are_bit_identical` below), and its AVX-512
//! (8×32 tiles, simplenn's patch) and AVX2+FMA (8×8) kernels give the same bits
//! (`kernels_are_bit_identical`): [`gemm_with`] may pick either per call.
//!
//! ```
//! use simplenn::gemm::{gemm, Beta, MatMut, MatRef};
//!
//! // C (2×2) = A (2×3) · Wᵀ, with W stored row-major as (2×3): Wᵀ is a stride swap.
//! let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
//! let w = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0];
//! let mut c = [0.0f32; 4];
//! gemm(MatRef::new(&a, 2, 3), MatRef::new(&w, 2, 3).t(), Beta::Overwrite, MatMut::new(&mut c, 2, 2));
//! assert_eq!(c, [4.0, 2.0, 10.0, 5.0]);
//! ```

use std::ops::Range;

/// A read-only strided view of a `rows × cols` matrix.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major `rows × cols` view of `data` (row stride `cols`).
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols, 1)
    }

    /// A view with explicit strides; panics if `data` is too short.
    pub fn strided(data: &'a [f32], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        let m = MatRef {
            data,
            rows,
            cols,
            rs,
            cs,
        };
        assert!(
            span(rows, cols, rs, cs) <= data.len(),
            "matrix view {rows}x{cols} (strides {rs},{cs}) does not fit in {} elements",
            data.len()
        );
        m
    }

    /// The transpose, by swapping dimensions and strides.
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    /// Rows `r0..r1` of this view.
    pub fn rows(self, r0: usize, r1: usize) -> Self {
        assert!(r0 <= r1 && r1 <= self.rows);
        let start = if r0 == r1 { 0 } else { r0 * self.rs };
        MatRef {
            data: &self.data[start.min(self.data.len())..],
            rows: r1 - r0,
            ..self
        }
    }

    /// Columns `c0..c1` of this view.
    pub fn cols(self, c0: usize, c1: usize) -> Self {
        assert!(c0 <= c1 && c1 <= self.cols);
        let start = if c0 == c1 { 0 } else { c0 * self.cs };
        MatRef {
            data: &self.data[start.min(self.data.len())..],
            cols: c1 - c0,
            ..self
        }
    }

    /// Element `(i, j)`.
    #[inline]
    pub fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.rs + j * self.cs]
    }
}

/// A mutable strided view of a `rows × cols` matrix.
#[derive(Debug)]
pub struct MatMut<'a> {
    pub data: &'a mut [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> MatMut<'a> {
    /// A row-major `rows × cols` view of `data`.
    pub fn new(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols, 1)
    }

    /// A view with explicit strides; panics if `data` is too short.
    pub fn strided(data: &'a mut [f32], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        assert!(
            span(rows, cols, rs, cs) <= data.len(),
            "matrix view {rows}x{cols} (strides {rs},{cs}) does not fit in {} elements",
            data.len()
        );
        MatMut {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }
}

/// Number of elements a view needs: one past its last element;
/// `usize::MAX` (fits no slice) where that overflows.
fn span(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    if rows == 0 || cols == 0 {
        return 0;
    }
    (rows - 1)
        .checked_mul(rs)
        .and_then(|r| (cols - 1).checked_mul(cs)?.checked_add(r)?.checked_add(1))
        .unwrap_or(usize::MAX)
}

/// Panics unless a `rows × cols` view at strides `rs, cs` lies inside
/// `len` elements. Checked again at every product, not only when a view is
/// made: the fields are public, so a view may have been built or changed
/// by hand since.
fn check_fits(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) {
    assert!(
        span(rows, cols, rs, cs) <= len && rs <= isize::MAX as usize && cs <= isize::MAX as usize,
        "gemm: matrix view {rows}x{cols} (strides {rs},{cs}) does not fit in {len} elements"
    );
}

/// Panics unless no two elements of an output view share memory
/// (matrixmultiply's contract for `C`, and what lets [`gemm_parts`] write
/// its pieces from several threads): each row's elements `cs` apart, rows
/// `rs` apart past a whole row (or the transpose of that).
fn check_distinct(rows: usize, cols: usize, rs: usize, cs: usize) {
    let ok = rows == 0
        || cols == 0
        || (rows <= 1 || rs > 0)
            && (cols <= 1 || cs > 0)
            && (rows <= 1
                || cols <= 1
                || rs >= cols.saturating_mul(cs)
                || cs >= rows.saturating_mul(rs));
    assert!(
        ok,
        "gemm: output view {rows}x{cols} (strides {rs},{cs}) has elements that overlap"
    );
}

/// What happens to the old `C`: overwritten, added to, or scaled and added
/// to (`C ← A·B + β·C`, the momentum update `v ← g + μ·v` in one pass).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Beta {
    /// `C ← A·B` (`C` is not read, so it may hold anything, NaN included).
    Overwrite,
    /// `C ← A·B + C`
    Accumulate,
    /// `C ← A·B + β·C`; `Scale(0.0)` is `Overwrite`.
    Scale(f32),
}

impl Beta {
    /// β as matrixmultiply takes it (0 means `C` is not read).
    fn value(self) -> f32 {
        match self {
            Beta::Overwrite => 0.0,
            Beta::Accumulate => 1.0,
            Beta::Scale(b) => b,
        }
    }
}

/// `C ← A·B + β·C` on the calling thread, with the kernels
/// [`kernels_for`] picks for its shape.
pub fn gemm(a: MatRef, b: MatRef, beta: Beta, c: MatMut) {
    gemm_with(kernels_for(a.rows, b.cols), a, b, beta, c);
}

/// The kernels for an `m × n` output: the AVX-512 kernel's 8×32 tiles
/// unless `C` is narrower than one tile either way. For the 10-class layer's
/// `n = 10` outputs (the last layer's `Z_1 = A_0·W_1ᵀ` of 784-256-10, `Z_2` of 784-1024-1024-10)
/// the AVX2+FMA kernel's 8×8 tiles ran at 1.3–1.6× the AVX-512 kernel in
/// `examples/kernel_choice` on Intel Xeons, and about 2× on an AMD EPYC
/// (Zen 4), the AVX-512 kernel padding them to 32 columns; everywhere else
/// the AVX-512 kernel ran at 1.6–2.3× on an Emerald Rapids Xeon and
/// 0.99–1.73× on the EPYC. Either gives the same bits, so this is for speed
/// only.
pub fn kernels_for(m: usize, n: usize) -> Kernels {
    if m < 8 || n < 32 {
        Kernels::NoAvx512
    } else {
        Kernels::Best
    }
}

/// Sizes the calling thread's packing buffer for the largest product any
/// call can ask of it, so that no later call on this thread allocates,
/// whatever its shape: matrixmultiply packs at most an `mc × kc` block of
/// `A` and a `kc × nc` block of `B` at a time (64, 256 and 1024 for f32,
/// whichever kernel), and keeps each thread's largest buffer (the patch in
/// `vendor/matrixmultiply`). A trainer whose shapes change every step
/// (batchwise dropout's thinned network) runs it once on every pool thread.
pub fn reserve_packing() {
    let (m, k, n) = (64, 256, 1024);
    let (a, b) = (vec![0.0; m * k], vec![0.0; k * n]);
    let mut c = vec![0.0; m * n];
    for kernels in [Kernels::Best, Kernels::NoAvx512] {
        gemm_with(
            kernels,
            MatRef::new(&a, m, k),
            MatRef::new(&b, k, n),
            Beta::Overwrite,
            MatMut::new(&mut c, m, n),
        );
    }
}

/// The microkernels matrixmultiply may choose from (AVX-512F or not).
pub use matrixmultiply::SgemmKernels as Kernels;

/// Whether `Kernels::Best` runs matrixmultiply's AVX-512 kernel here
/// (the CPU has AVX-512F and the crate was built with it).
pub fn avx512_kernel_available() -> bool {
    matrixmultiply::sgemm_avx512_detected()
}

/// [`gemm`] restricted to `kernels`. Every choice gives the same bits for
/// α = 1 (`kernels_are_bit_identical` below); only the speed differs.
pub fn gemm_with(kernels: Kernels, a: MatRef, b: MatRef, beta: Beta, c: MatMut) {
    check_shapes(a, b, &c);
    // SAFETY: `check_shapes` has just checked each view's extent against its
    // slice (`span <= len`) and that `C`'s elements are distinct; `c` is a
    // unique borrow so it aliases neither `a` nor `b`; and matrixmultiply
    // reads/writes only elements inside those extents.
    unsafe {
        raw_sgemm(kernels, a, b, beta, (c.data.as_mut_ptr(), c.rs, c.cs), None);
    }
}

/// [`gemm`], then `then(c_block, d_block)` on each block of `C` as soon as
/// the block is final, while it is still in this core's cache: `d_block` is
/// the same elements of `d`, a second matrix of `C`'s shape and strides.
///
/// The blocks cover `C` exactly once, one call at a time on the calling
/// thread, each at most 64 rows by 1024 columns (matrixmultiply's `mc` and
/// `nc`; where `k = 0`, one block: all of `C`). Each block of `C` comes to
/// `then` as [`gemm`] leaves it, final, and `then` may change it and `d`
/// (that block's elements only). The trainer's momentum SGD step (`w ← w −
/// lr·v`, `d = w`) runs this way, reading each block of `v = C` from cache
/// rather than all of `v` back from memory after the product. Same bits as
/// `gemm` followed by `then` over the whole matrices, for any elementwise
/// `then`.
pub fn gemm_then(
    a: MatRef,
    b: MatRef,
    beta: Beta,
    c: MatMut,
    d: MatMut,
    then: &(dyn Fn(MatMut, MatMut) + Sync),
) {
    check_shapes(a, b, &c);
    assert_eq!(
        (c.rows, c.cols, c.rs, c.cs),
        (d.rows, d.cols, d.rs, d.cs),
        "gemm_then: d must have C's shape and strides"
    );
    check_fits(d.data.len(), d.rows, d.cols, d.rs, d.cs);
    let (rs, cs) = (c.rs, c.cs);
    let (cp, dp) = (Shared(c.data.as_mut_ptr()), Shared(d.data.as_mut_ptr()));
    let block = |r0: usize, rows: usize, c0: usize, cols: usize| {
        let (at, len) = (r0 * rs + c0 * cs, span(rows, cols, rs, cs));
        // SAFETY: matrixmultiply gives blocks inside the `c.rows × c.cols`
        // view, whose extent was checked against `c.data` and `d.data`
        // (same shape and strides) above, so `at..at + len` is
        // in bounds of both. Blocks come one at a time on this thread while
        // the product writes nothing (`sgemm_then`'s contract), so neither
        // slice is used by anyone else while it lives; `c` and `d` are
        // distinct unique borrows, so the two do not alias.
        let (cb, db) = unsafe {
            (
                std::slice::from_raw_parts_mut(cp.at(at), len),
                std::slice::from_raw_parts_mut(dp.at(at), len),
            )
        };
        then(
            MatMut::strided(cb, rows, cols, rs, cs),
            MatMut::strided(db, rows, cols, rs, cs),
        );
    };
    // SAFETY: as `gemm_with`. The slices handed to the epilogue span the
    // block's extent, which for strided or wide views also covers elements
    // of other, unfinished blocks; that is sound because `sgemm_then` runs
    // on this one thread and holds no reference into `C` while the epilogue
    // runs (a caller touching those elements through `MatMut::data` reads
    // or writes values, not UB; writing them would spoil the product, which
    // the contract above forbids).
    unsafe {
        raw_sgemm(
            kernels_for(a.rows, b.cols),
            a,
            b,
            beta,
            (cp.at(0), rs, cs),
            Some(&block),
        );
    }

    /// A pointer the epilogue may carry (`Epilogue` is `Sync`).
    #[derive(Clone, Copy)]
    struct Shared(*mut f32);
    impl Shared {
        /// The pointer `i` elements on (a method, so closures capture the
        /// `Sync` wrapper, not its field).
        ///
        /// # Safety
        /// `i` is within the allocation the pointer came from.
        unsafe fn at(self, i: usize) -> *mut f32 {
            // SAFETY: the caller's.
            unsafe { self.0.add(i) }
        }
    }
    // SAFETY: only dereferenced by `block` above, one block at a time on
    // the calling thread, within the unique borrows `gemm_then` holds.
    unsafe impl Sync for Shared {}
}

/// Panics unless `A·B` is defined, `C` is its shape, every view lies inside
/// its slice, and `C`'s elements are distinct: what the `unsafe` calls of
/// this module rely on.
fn check_shapes(a: MatRef, b: MatRef, c: &MatMut) {
    assert_eq!(a.cols, b.rows, "gemm: inner dimensions differ");
    assert_eq!((a.rows, b.cols), (c.rows, c.cols), "gemm: output shape");
    check_fits(a.data.len(), a.rows, a.cols, a.rs, a.cs);
    check_fits(b.data.len(), b.rows, b.cols, b.rs, b.cs);
    check_fits(c.data.len(), c.rows, c.cols, c.rs, c.cs);
    check_distinct(c.rows, c.cols, c.rs, c.cs);
}

/// How [`gemm_parts`] cuts an `m × n` output into `parts` pieces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Ranges of rows, on multiples of 8 ([`part_range`]): every piece
    /// reads all of `B`.
    Rows,
    /// Ranges of columns, on multiples of 32 ([`column_range`]): every
    /// piece reads all of `A`.
    Columns,
}

impl Cut {
    /// The cut that packs less per piece. matrixmultiply packs the `A` rows
    /// and `B` columns a call reads, so a row cut packs `m/p·k + k·n` per
    /// piece and a column cut `m·k + k·n/p`: columns when `n > m`, provided
    /// every piece still gets a whole 32-column AVX-512 tile.
    pub fn for_shape(m: usize, n: usize, parts: usize) -> Cut {
        if n > m && n >= 32 * parts {
            Cut::Columns
        } else {
            Cut::Rows
        }
    }
}

/// `C ← A·B + β·C` in `parts` pieces run in parallel on the current rayon
/// pool (halved recursively with `rayon::join`), cut as
/// [`Cut::for_shape`] says; each piece is one [`gemm`] call. Bit-identical
/// to one `gemm` call whatever `parts` is (see the module docs).
pub fn gemm_parts(a: MatRef, b: MatRef, beta: Beta, c: MatMut, parts: usize) {
    check_shapes(a, b, &c);
    let parts = parts.max(1);
    if parts == 1 {
        return gemm(a, b, beta, c);
    }
    let cut = Cut::for_shape(c.rows, c.cols, parts);
    let out = OutPtr {
        ptr: c.data.as_mut_ptr(),
        rs: c.rs,
        cs: c.cs,
    };
    halve(cut, a, b, beta, &out, parts, 0..parts);

    /// `C`'s pointer and strides, shared by the pieces, which write
    /// disjoint elements of it.
    struct OutPtr {
        ptr: *mut f32,
        rs: usize,
        cs: usize,
    }
    // SAFETY: an `OutPtr` is only used inside `gemm_parts`, which holds the
    // unique borrow of `C` for as long as the pieces run, and each piece
    // writes only its own rows or columns of `C`, which are distinct memory
    // (`check_distinct`).
    unsafe impl Sync for OutPtr {}

    fn halve(
        cut: Cut,
        a: MatRef,
        b: MatRef,
        beta: Beta,
        c: &OutPtr,
        parts: usize,
        ps: Range<usize>,
    ) {
        if ps.len() > 1 {
            let mid = ps.start + ps.len() / 2;
            rayon::join(
                || halve(cut, a, b, beta, c, parts, ps.start..mid),
                || halve(cut, a, b, beta, c, parts, mid..ps.end),
            );
            return;
        }
        let (a, b, offset) = match cut {
            Cut::Rows => {
                let (lo, hi) = part_range(a.rows, parts, ps.start);
                (a.rows(lo, hi), b, lo * c.rs)
            }
            Cut::Columns => {
                let (lo, hi) = column_range(b.cols, parts, ps.start);
                (a, b.cols(lo, hi), lo * c.cs)
            }
        };
        if a.rows == 0 || b.cols == 0 {
            return;
        }
        // SAFETY: `c` is the output of `gemm_parts`, checked to be an
        // `a.rows × b.cols` view of a unique borrow; this piece's rows (or
        // columns) start `offset` elements in and lie inside that view, and
        // no other piece touches them (the ranges are disjoint).
        unsafe {
            raw_sgemm(
                kernels_for(a.rows, b.cols),
                a,
                b,
                beta,
                (c.ptr.add(offset), c.rs, c.cs),
                None,
            );
        }
    }
}

/// Range of part `p` when `dim` columns are cut into `parts` near-equal
/// pieces whose boundaries fall on multiples of 32 (the width of the
/// AVX-512 kernel's 8×32 tile). For speed only: a cut anywhere gives the
/// same bits.
pub fn column_range(dim: usize, parts: usize, p: usize) -> (usize, usize) {
    tile_range(dim, parts, p, 32)
}

/// Range of part `p` when `dim` is cut into `parts` near-equal pieces whose
/// boundaries fall on multiples of 8 (the height of both kernels' register
/// tiles, 8×8 and 8×32; the trainer cuts rows). For speed only: a cut
/// anywhere gives the same bits.
pub fn part_range(dim: usize, parts: usize, p: usize) -> (usize, usize) {
    tile_range(dim, parts, p, 8)
}

/// Part `p` of `parts` near-equal pieces of `dim`, cut on multiples of `tile`.
fn tile_range(dim: usize, parts: usize, p: usize, tile: usize) -> (usize, usize) {
    let tiles = dim.div_ceil(tile);
    let lo = (tiles * p / parts * tile).min(dim);
    let hi = (tiles * (p + 1) / parts * tile).min(dim);
    (lo, hi)
}

/// # Safety
/// `(c, rsc, csc)` must point to a matrix with `a.rows × b.cols` distinct
/// writable elements at strides `rsc, csc` (each at most `isize::MAX`) that
/// no other live reference reads or writes; `a`, `b` must be views checked
/// by `check_shapes`, with `a.cols == b.rows`; `then`, if given, may write
/// `C` only inside the block it is handed (it may read any of `C`: the
/// product runs on this thread and holds no reference into `C` meanwhile).
unsafe fn raw_sgemm(
    kernels: Kernels,
    a: MatRef,
    b: MatRef,
    beta: Beta,
    (c, rsc, csc): (*mut f32, usize, usize),
    then: Option<&matrixmultiply::Epilogue<'_>>,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    // Every caller ran `check_shapes`, whose `assert!`s hold in release
    // builds too; this one only restates the contract.
    debug_assert_eq!(b.rows, k);
    let (rsa, csa, rsb, csb) = (a.rs as isize, a.cs as isize, b.rs as isize, b.cs as isize);
    let (ap, bp, beta, rsc, csc) = (
        a.data.as_ptr(),
        b.data.as_ptr(),
        beta.value(),
        rsc as isize,
        csc as isize,
    );
    // SAFETY: forwarded from this function's contract; `check_fits` has
    // checked that every stride fits in isize.
    unsafe {
        match then {
            None => matrixmultiply::sgemm_with(
                kernels, m, k, n, 1.0, ap, rsa, csa, bp, rsb, csb, beta, c, rsc, csc,
            ),
            Some(then) => matrixmultiply::sgemm_then(
                kernels, m, k, n, 1.0, ap, rsa, csa, bp, rsb, csb, beta, c, rsc, csc, then,
            ),
        }
    }
}

/// The obvious triple loop, `C ← A·B + β·C`, accumulated in f64: the
/// reference the fast path is tested against.
#[doc(hidden)]
pub fn matmul_naive(a: MatRef, b: MatRef, beta: Beta, c: &mut MatMut) {
    assert_eq!(a.cols, b.rows);
    assert_eq!((a.rows, b.cols), (c.rows, c.cols));
    for i in 0..a.rows {
        for j in 0..b.cols {
            let mut s = 0f64;
            for l in 0..a.cols {
                s += a.at(i, l) as f64 * b.at(l, j) as f64;
            }
            let idx = i * c.rs + j * c.cs;
            c.data[idx] = match beta {
                Beta::Overwrite => s as f32,
                _ => (s + beta.value() as f64 * c.data[idx] as f64) as f32,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(n: usize, seed: u32) -> Vec<f32> {
        let mut x = seed.wrapping_mul(2654435761).wrapping_add(12345);
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    /// One `gemm` call's `A·B + 0.5·C` into a copy of `c0`, `C` being the
    /// first `b.cols` columns of rows `rs` apart: the bits a cut or fused
    /// call must match.
    fn half_beta_product(a: MatRef, b: MatRef, c0: &[f32], rs: usize) -> Vec<f32> {
        let mut want = c0.to_vec();
        let c = MatMut::strided(&mut want, a.rows, b.cols, rs, 1);
        gemm(a, b, Beta::Scale(0.5), c);
        want
    }

    /// The public fields let a view be built or changed by hand: every
    /// product checks each view against its slice again, strides whose span
    /// overflows fit nothing, and an output whose elements overlap is
    /// refused (several threads would write the same floats).
    #[test]
    fn views_that_do_not_fit_or_overlap_are_refused() {
        use std::panic::catch_unwind;
        let (a, b) = (vec![1.0f32; 64 * 64], vec![1.0f32; 64 * 64]);
        let refused = |f: &dyn Fn()| {
            catch_unwind(std::panic::AssertUnwindSafe(f))
                .expect_err("accepted")
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_default()
        };
        let short = refused(&|| {
            let mut c = vec![0.0f32; 64 * 64];
            let a = MatRef {
                data: &a[..10],
                ..MatRef::new(&a, 64, 64)
            };
            gemm(
                a,
                MatRef::new(&b, 64, 64),
                Beta::Overwrite,
                MatMut::new(&mut c, 64, 64),
            );
        });
        assert!(short.contains("does not fit in 10 elements"), "{short}");
        let e = refused(&|| {
            let mut c = vec![0.0f32; 64 * 64];
            let mut grown = MatMut::new(&mut c, 64, 64);
            grown.rs = 65;
            gemm(
                MatRef::new(&a, 64, 64),
                MatRef::new(&b, 64, 64),
                Beta::Overwrite,
                grown,
            );
        });
        assert!(e.contains("does not fit"), "{e}");
        // (rows − 1)·rs overflows: the span fits nothing (unchecked, it
        // wrapped to 0 in release builds and panicked in debug ones), so the
        // view is refused.
        assert_eq!(span(2, 1, usize::MAX, 1), usize::MAX);
        assert_eq!(span(1, 3, 0, usize::MAX / 2 + 1), usize::MAX);
        assert!(catch_unwind(|| MatRef::strided(&a[..1], 2, 1, usize::MAX, 1)).is_err());
        for (rs, cs) in [(0, 1), (1, 0), (32, 1), (1, 32)] {
            let e = refused(&|| {
                let mut c = vec![0.0f32; 64 * 64];
                let c = MatMut::strided(&mut c, 64, 64, rs, cs);
                gemm_parts(
                    MatRef::new(&a, 64, 64),
                    MatRef::new(&b, 64, 64),
                    Beta::Accumulate,
                    c,
                    2,
                );
            });
            assert!(e.contains("overlap"), "strides {rs},{cs}: {e}");
        }
        // Column-major, gapped and empty outputs are fine.
        gemm(
            MatRef::new(&a[..0], 3, 0),
            MatRef::new(&b[..0], 0, 0),
            Beta::Overwrite,
            MatMut::new(&mut [], 3, 0),
        );
        for (rs, cs) in [(1, 64), (70, 1)] {
            let mut c = vec![0.0f32; 70 * 64];
            gemm(
                MatRef::new(&a, 64, 64),
                MatRef::new(&b, 64, 64),
                Beta::Overwrite,
                MatMut::strided(&mut c, 64, 64, rs, cs),
            );
        }
        // A single column's stride between columns, or a single row's
        // between rows, is never used, so it may be anything.
        for (m, n, rs, cs) in [(3, 1, 2, 3), (1, 3, 5, 2)] {
            let mut c = vec![0.0f32; 16];
            gemm(
                MatRef::new(&a[..m * 4], m, 4),
                MatRef::new(&b[..4 * n], 4, n),
                Beta::Overwrite,
                MatMut::strided(&mut c, m, n, rs, cs),
            );
            // Both views' elements sit at 0, 2 and 4.
            let want: Vec<f32> = (0..16)
                .map(|i| if i < 6 && i % 2 == 0 { 4.0 } else { 0.0 })
                .collect();
            assert_eq!(c, want, "{m}×{n}, strides {rs},{cs}");
        }
    }

    #[test]
    fn transposed_views_match_naive() {
        // C (5x7) = Aᵀ (5x9) · Bᵀ (9x7), A stored 9x5 and B stored 7x9.
        let a = filled(45, 1);
        let b = filled(63, 2);
        let av = MatRef::new(&a, 9, 5).t();
        let bv = MatRef::new(&b, 7, 9).t();
        let mut c1 = filled(35, 3);
        let mut c2 = c1.clone();
        gemm(av, bv, Beta::Accumulate, MatMut::new(&mut c1, 5, 7));
        matmul_naive(av, bv, Beta::Accumulate, &mut MatMut::new(&mut c2, 5, 7));
        for (x, y) in c1.iter().zip(&c2) {
            assert!((x - y).abs() < 1e-4, "{x} vs {y}");
        }
    }

    #[test]
    fn gemm_then_sees_each_final_block_once() {
        // `then` copies each block of C into d, which starts as NaN and must
        // still be NaN where it writes: a block handed over twice, or one
        // missed, or one handed over before its last k block (k = 300 > KC
        // = 256, so C changes after the first), leaves d ≠ C. m and n span
        // several 64-row and 1024-column blocks; C is strided (a column
        // view of a wider matrix) to check the block offsets; k = 0 is C ← βC.
        for (m, k, n) in [(150, 300, 1100), (70, 9, 33), (5, 0, 7)] {
            let a = filled(m * k, 21);
            let b = filled(k * n, 22);
            let (av, bv) = (MatRef::new(&a, m, k), MatRef::new(&b, k, n));
            let rs = n + 3;
            let c0 = filled(m * rs, 23);
            let want = half_beta_product(av, bv, &c0, rs);
            let mut got = c0.clone();
            let mut d = vec![f32::NAN; m * rs];
            let blocks = std::sync::atomic::AtomicUsize::new(0);
            gemm_then(
                av,
                bv,
                Beta::Scale(0.5),
                MatMut::strided(&mut got, m, n, rs, 1),
                MatMut::strided(&mut d, m, n, rs, 1),
                &|c, d| {
                    blocks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    for i in 0..c.rows {
                        for j in 0..c.cols {
                            let at = i * d.rs + j * d.cs;
                            assert!(d.data[at].is_nan(), "element handed over twice");
                            d.data[at] = c.data[i * c.rs + j * c.cs];
                        }
                    }
                },
            );
            assert_eq!(got, want, "{m}x{k}x{n}: C differs from gemm's");
            for i in 0..m {
                for j in 0..rs {
                    let (g, x) = (got[i * rs + j], d[i * rs + j]);
                    if j < n {
                        assert_eq!(
                            g.to_bits(),
                            x.to_bits(),
                            "{m}x{k}x{n} ({i},{j}): block not final"
                        );
                    } else {
                        assert!(x.is_nan(), "({i},{j}) outside C touched");
                    }
                }
            }
            let want_blocks = if k == 0 {
                1
            } else {
                m.div_ceil(64) * n.div_ceil(1024)
            };
            assert_eq!(blocks.into_inner(), want_blocks, "{m}x{k}x{n}");
        }
    }

    #[test]
    fn every_layout_matches_naive() {
        // Packing takes a different path for each operand layout (a
        // contiguous copy along the panel, 8×8 register transposes for
        // f32 strided along it, upstream's element loop otherwise) and for
        // the ragged ends of panels (m, n not multiples of the tile, kc not
        // a multiple of 8, k past one KC = 256 block). Every one is checked
        // against the f64 triple loop, with either kernel.
        for (m, k, n) in [(44, 300, 37), (8, 8, 32), (17, 263, 65), (128, 784, 40)] {
            let a = filled(m * k, 11);
            let b = filled(k * n, 12);
            let c0 = filled(m * n, 13);
            for layout in 0..4 {
                let av = if layout & 1 != 0 {
                    MatRef::new(&a, k, m).t()
                } else {
                    MatRef::new(&a, m, k)
                };
                let bv = if layout & 2 != 0 {
                    MatRef::new(&b, n, k).t()
                } else {
                    MatRef::new(&b, k, n)
                };
                let mut want = c0.clone();
                matmul_naive(av, bv, Beta::Scale(0.5), &mut MatMut::new(&mut want, m, n));
                for kernels in [Kernels::Best, Kernels::NoAvx512] {
                    let mut got = c0.clone();
                    gemm_with(
                        kernels,
                        av,
                        bv,
                        Beta::Scale(0.5),
                        MatMut::new(&mut got, m, n),
                    );
                    for (i, (x, y)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (x - y).abs() < 1e-5 * k as f32,
                            "{m}x{k}x{n} layout {layout} {kernels:?} element {i}: {x} vs {y}"
                        );
                    }
                }
            }
        }
    }

    /// Computes `C ← A·B + β·C` (40×300×37) in one call and cut in two at
    /// every row (or column), and asserts the same bits.
    fn assert_cuts_anywhere_bit_identical(kernels: Kernels, by_rows: bool) {
        // 44 rows and 37 columns: full tiles and edge tiles both ways for
        // both kernels (8×8 and 8×32), and a cut anywhere moves elements
        // between them. k = 300 spans two KC = 256 blocks.
        let (m, k, n) = (44, 300, 37);
        let a = filled(m * k, 6);
        let b = filled(k * n, 7);
        let c0 = filled(m * n, 8);
        let (av, bv) = (MatRef::new(&a, m, k), MatRef::new(&b, k, n));
        for beta in [Beta::Overwrite, Beta::Accumulate, Beta::Scale(0.9)] {
            let mut want = c0.clone();
            gemm_with(kernels, av, bv, beta, MatMut::new(&mut want, m, n));
            for cut in 1..if by_rows { m } else { n } {
                let mut got = c0.clone();
                if by_rows {
                    let (top, bottom) = got.split_at_mut(cut * n);
                    for (rows, c) in [(0..cut, top), (cut..m, bottom)] {
                        let r = rows.len();
                        gemm_with(
                            kernels,
                            av.rows(rows.start, rows.end),
                            bv,
                            beta,
                            MatMut::new(c, r, n),
                        );
                    }
                } else {
                    for cols in [0..cut, cut..n] {
                        let c = MatMut::strided(&mut got[cols.start..], m, cols.len(), n, 1);
                        gemm_with(kernels, av, bv.cols(cols.start, cols.end), beta, c);
                    }
                }
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{kernels:?} {beta:?}: cut at {} {cut} differs from one call",
                    if by_rows { "row" } else { "column" }
                );
            }
        }
    }

    #[test]
    fn gemm_row_cuts_anywhere_are_bit_identical() {
        // The trainer cuts the output layer's dW (10 rows) at row 5: full tiles in one call
        // become edge tiles in the other. With β = 0, 1 and 0.9 both paths
        // must round the same, with either kernel.
        for kernels in [Kernels::Best, Kernels::NoAvx512] {
            assert_cuts_anywhere_bit_identical(kernels, true);
        }
    }

    #[test]
    fn gemm_column_cuts_anywhere_are_bit_identical() {
        // Not a cut the trainer makes today; the same argument holds.
        for kernels in [Kernels::Best, Kernels::NoAvx512] {
            assert_cuts_anywhere_bit_identical(kernels, false);
        }
    }

    /// `(m, k, n)` of the trainer's products: the 784-256-10 and the
    /// 784-1024-1024-10 networks at batch 128, forward and backward.
    const TRAINER_SHAPES: [(usize, usize, usize); 12] = [
        (128, 784, 256),
        (128, 256, 10),
        (128, 10, 256),
        (10, 128, 256),
        (784, 128, 256),
        (128, 784, 1024),
        (128, 1024, 1024),
        (128, 1024, 10),
        (128, 10, 1024),
        (1024, 128, 1024),
        (784, 128, 1024),
        (10, 128, 1024),
    ];

    /// The policy `kernels_for`'s doc states: AVX2+FMA's 8×8 tiles for an
    /// output narrower than one 8×32 AVX-512 tile either way (the 10-class
    /// layer's products), the AVX-512 kernel for every other trainer shape.
    #[test]
    fn narrow_outputs_take_the_avx2_kernel() {
        for (m, n, want) in [
            (128, 10, Kernels::NoAvx512),
            (7, 1024, Kernels::NoAvx512),
            (8, 31, Kernels::NoAvx512),
            (8, 32, Kernels::Best),
            (128, 1024, Kernels::Best),
            (1024, 784, Kernels::Best),
        ] {
            assert_eq!(kernels_for(m, n), want, "{m} × {n}");
        }
    }

    #[test]
    fn kernels_are_bit_identical() {
        // matrixmultiply's AVX-512 kernel (8×32 tiles) against its AVX2+FMA
        // one (8×8): both accumulate every element by one FMA per k, in k
        // order, from +0, within the same KC = 256 blocks, and both store
        // AB + round(β·C) rounded once when α = 1, in full and edge tiles
        // alike, so the bits must agree wherever the tile edges fall.
        // Operands row-major or transposed by strides, C row- or column-major.
        if !avx512_kernel_available() {
            // Straight to stderr, past the test harness's capture: a skip
            // here means this machine never compared the two kernels.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "*** SKIPPED: gemm::tests::kernels_are_bit_identical: no AVX-512F kernel on this CPU/build ***"
            );
            return;
        }
        for (s, &(m, k, n)) in TRAINER_SHAPES.iter().enumerate() {
            let seed = 100 + 10 * s as u32;
            let a = filled(m * k, seed);
            let b = filled(k * n, seed + 1);
            let c0 = filled(m * n, seed + 2);
            for layout in 0..8 {
                let (at, bt, ct) = (layout & 1 != 0, layout & 2 != 0, layout & 4 != 0);
                // Column-major C only on the small shapes: it is not a trainer layout.
                if ct && m * n > 256 * 256 {
                    continue;
                }
                let av = if at {
                    MatRef::new(&a, k, m).t()
                } else {
                    MatRef::new(&a, m, k)
                };
                let bv = if bt {
                    MatRef::new(&b, n, k).t()
                } else {
                    MatRef::new(&b, k, n)
                };
                let (rs, cs) = if ct { (1, m) } else { (n, 1) };
                for beta in [Beta::Overwrite, Beta::Accumulate, Beta::Scale(0.9)] {
                    let run = |kernels| {
                        let mut c = c0.clone();
                        gemm_with(kernels, av, bv, beta, MatMut::strided(&mut c, m, n, rs, cs));
                        c
                    };
                    let (wide, narrow) = (run(Kernels::Best), run(Kernels::NoAvx512));
                    let differ = wide
                        .iter()
                        .zip(&narrow)
                        .filter(|(x, y)| x.to_bits() != y.to_bits())
                        .count();
                    assert_eq!(
                        differ, 0,
                        "{m}x{k}x{n} (Aᵀ {at}, Bᵀ {bt}, Cᵀ {ct}) {beta:?}: \
                         {differ} elements differ between AVX-512 and AVX2+FMA"
                    );
                }
            }
        }
        // An AB that underflows to -0 is stored as +0 by both (the AVX-512
        // kernel by simplenn's patch, vendor/matrixmultiply/PATCHES.md).
        // 32×32: full tiles of either kernel.
        let (a, b) = ([-1e-30f32; 32], [1e-30f32; 32]);
        for kernels in [Kernels::Best, Kernels::NoAvx512] {
            let mut c = [f32::NAN; 1024];
            let (av, bv) = (MatRef::new(&a, 32, 1), MatRef::new(&b, 1, 32));
            gemm_with(
                kernels,
                av,
                bv,
                Beta::Overwrite,
                MatMut::new(&mut c, 32, 32),
            );
            assert!(c.iter().all(|x| x.to_bits() == 0), "{kernels:?}: {}", c[0]);
        }
    }

    #[test]
    fn part_ranges_cover_dimension() {
        for dim in [1, 7, 8, 9, 100, 256, 784] {
            for parts in 1..=9 {
                let (mut next, mut next_col) = (0, 0);
                for p in 0..parts {
                    let (lo, hi) = part_range(dim, parts, p);
                    assert_eq!(lo, next);
                    next = hi;
                    let (lo, hi) = column_range(dim, parts, p);
                    assert_eq!(lo, next_col);
                    assert!(lo % 32 == 0 || lo == dim);
                    next_col = hi;
                }
                assert_eq!((next, next_col), (dim, dim));
            }
        }
    }

    #[test]
    fn gemm_parts_match_one_call() {
        // Tall outputs are cut by rows, wide ones by columns (strided C
        // inside a larger buffer); every cut gives the one call's bits.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        for (m, k, n) in [(100, 30, 40), (37, 50, 200), (16, 9, 97)] {
            let a = filled(m * k, 21);
            let b = filled(k * n, 22);
            let (av, bv) = (MatRef::new(&a, m, k), MatRef::new(&b, n, k).t());
            let rs = n + 5;
            let c0 = filled(m * rs, 23);
            let want = half_beta_product(av, bv, &c0, rs);
            for parts in 1..=5 {
                let cut = Cut::for_shape(m, n, parts);
                let mut got = c0.clone();
                pool.install(|| {
                    gemm_parts(
                        av,
                        bv,
                        Beta::Scale(0.5),
                        MatMut::strided(&mut got, m, n, rs, 1),
                        parts,
                    )
                });
                let same = got
                    .iter()
                    .zip(&want)
                    .all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "{m}x{k}x{n}, {parts} parts cut by {cut:?}");
            }
        }
        assert_eq!(Cut::for_shape(37, 200, 5), Cut::Columns);
        assert_eq!(Cut::for_shape(100, 40, 2), Cut::Rows);
    }
}
