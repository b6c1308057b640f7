// Copyright 2016 - 2023 Ulrik Sverdrup "bluss"
//
// Licensed under the Apache License, Version 2.0 <LICENSE-APACHE or
// http://www.apache.org/licenses/LICENSE-2.0> or the MIT license
// <LICENSE-MIT or http://opensource.org/licenses/MIT>, at your
// option. This file may not be copied, modified, or distributed
// except according to those terms.

use rawpointer::PointerExt;

use core::mem::MaybeUninit;
use core::ptr::copy_nonoverlapping;

use crate::kernel::ConstNum;
use crate::kernel::Element;

/// An internal wrapper around a valid mutable pointer to uninitialized memory
#[repr(transparent)]
pub(crate) struct PackSlice<'a, T>(&'a mut [MaybeUninit<T>]);

impl<'a, T> PackSlice<'a, T> {
    #[inline(always)]
    pub(crate) fn as_mut_ptr(self) -> *mut T {
        self.0.as_mut_ptr().cast::<T>()
    }

    /// Create a slice that points to uninitialized memory
    ///
    /// # Safety
    ///
    /// The caller must ensure the pointer is non-null and valid for &mut access to the whole
    /// slice. And the slice is not used past the memory's lifetime (should be used as temporary only).
    #[inline]
    pub(crate) unsafe fn from<'b>(ptr: *mut T, size: usize) -> PackSlice<'b, T> {
        PackSlice(core::slice::from_raw_parts_mut(ptr.cast::<MaybeUninit<T>>(), size))
    }

    #[cfg(all(test, feature = "cgemm"))]
    #[inline]
    pub(crate) fn from_slice(slice: &'_ mut [T]) -> PackSlice<'_, T> {
        // SAFETY: follows from mutable slice invariants
        unsafe {
            PackSlice::from(slice.as_mut_ptr(), slice.len())
        }
    }
}

/// Pack matrix into `pack`
///
/// + kc: length of the micropanel
/// + mc: number of rows/columns in the matrix to be packed
/// + pack: packing buffer
/// + a: matrix,
/// + rsa: row stride
/// + csa: column stride
///
/// + MR: kernel rows/columns that we round up to
// If one of pack and a is of a reference type, it gets a noalias annotation which
// gives benefits to optimization. The packing buffer is contiguous so it can be passed as a slice
// here.
pub(crate) unsafe fn pack<MR, T>(kc: usize, mc: usize, pack: PackSlice<T>,
                                 a: *const T, rsa: isize, csa: isize)
    where T: Element,
          MR: ConstNum,
{
    pack_impl::<MR, T>(kc, mc, pack, a, rsa, csa, false)
}

/// Specialized for AVX2
/// Safety: Requires AVX2
#[cfg(any(target_arch="x86", target_arch="x86_64"))]
#[target_feature(enable="avx2")]
pub(crate) unsafe fn pack_avx2<MR, T>(kc: usize, mc: usize, pack: PackSlice<T>,
                                     a: *const T, rsa: isize, csa: isize)
    where T: Element,
          MR: ConstNum,
{
    // simplenn patch: `true`, AVX2 being enabled here.
    pack_impl::<MR, T>(kc, mc, pack, a, rsa, csa, true)
}

/// Specialized for AVX-512
/// Safety: Requires AVX-512F
#[cfg(has_avx512)]
#[allow(dead_code)] // simplenn patch: the AVX-512 kernel packs with pack_avx2
#[target_feature(enable="avx512f")]
pub(crate) unsafe fn pack_avx512<MR, T>(kc: usize, mc: usize, pack: PackSlice<T>,
                                        a: *const T, rsa: isize, csa: isize)
    where T: Element,
          MR: ConstNum,
{
    pack_impl::<MR, T>(kc, mc, pack, a, rsa, csa, false)
}

/// Pack implementation, see pack above for docs.
///
/// Uses inline(always) so that it can be instantiated for different target features.
///
/// simplenn patch: `avx2`, true only where AVX2 is enabled (`pack_avx2`),
/// lets `f32` operands strided along the panel take
/// `pack_f32_transposing`.
#[inline(always)]
unsafe fn pack_impl<MR, T>(kc: usize, mc: usize, pack: PackSlice<T>,
                           a: *const T, rsa: isize, csa: isize, avx2: bool)
    where T: Element,
          MR: ConstNum,
{
    let pack = pack.as_mut_ptr();
    let mr = MR::VALUE;
    let mut p = 0; // offset into pack

    if rsa == 1 {
        // if the matrix is contiguous in the same direction we are packing,
        // copy a kernel row at a time.
        //
        // simplenn patch: eight lines `j` (the `csa`-strided direction) at
        // a time, each read from start to end, instead of `mr` elements of
        // every line per panel: with lines a page or more apart (a
        // row-major weight matrix as `B`), the panel-first order missed in
        // cache on every copy; eight lines, not one, keep the writes to
        // each panel 8 · `mr` elements long. A 256 × 1024 block of a
        // 1024 × 1024 matrix packed in 0.6–0.7 of the time (PATCHES.md).
        // Same values, same places.
        let panels = mc / mr;
        let mut j0 = 0;
        while j0 < kc {
            let j1 = (j0 + 8).min(kc);
            for ir in 0..panels {
                for j in j0..j1 {
                    let a_row = a.stride_offset(rsa, ir * mr)
                                 .stride_offset(csa, j);
                    copy_nonoverlapping(a_row, pack.add((ir * kc + j) * mr), mr);
                }
            }
            j0 = j1;
        }
        p = panels * mr * kc;
    } else if avx2 && transposing_f32_pack_applies::<T>(mr, csa) {
        // simplenn patch: f32, contiguous along kc, strided along the
        // panel: 8×8 blocks transposed in registers (see the function).
        p = pack_f32_transposing(kc, mc, mr, pack.cast::<f32>(), a.cast::<f32>(), rsa);
    } else {
        // general layout case
        for ir in 0..mc/mr {
            let row_offset = ir * mr;
            for j in 0..kc {
                for i in 0..mr {
                    let a_elt = a.stride_offset(rsa, i + row_offset)
                                 .stride_offset(csa, j);
                    copy_nonoverlapping(a_elt, pack.add(p), 1);
                    p += 1;
                }
            }
        }
    }

    let zero = <_>::zero();

    // Pad with zeros to multiple of kernel size (uneven mc)
    let rest = mc % mr;
    if rest > 0 {
        let row_offset = (mc/mr) * mr;
        for j in 0..kc {
            for i in 0..mr {
                if i < rest {
                    let a_elt = a.stride_offset(rsa, i + row_offset)
                                 .stride_offset(csa, j);
                    copy_nonoverlapping(a_elt, pack.add(p), 1);
                } else {
                    *pack.add(p) = zero;
                }
                p += 1;
            }
        }
    }
}


/// simplenn patch: whether `pack_f32_transposing` can pack this operand:
/// `f32` elements (the only 4-byte `Element`), contiguous along `kc`
/// (`csa == 1`), panels a multiple of 8 wide, on x86-64. The caller
/// guarantees AVX2.
#[inline(always)]
fn transposing_f32_pack_applies<T>(mr: usize, csa: isize) -> bool {
    cfg!(target_arch = "x86_64") && core::mem::size_of::<T>() == 4 && csa == 1 && mr % 8 == 0
}

/// simplenn patch: the general-layout packing loop for `f32` operands that
/// are contiguous along `kc` and strided along the panel (a row-major `A`,
/// a transposed view of a row-major `B`). Upstream copies those one element
/// at a time, each load `rsa` apart from the last; this loads eight
/// consecutive `k` of eight panel rows, transposes the 8×8 block in
/// registers and stores eight packed rows, then finishes the last `kc % 8`
/// columns one element at a time. It writes exactly what the upstream loop
/// writes, in the same places, and returns the offset after the full
/// panels (`(mc / mr) · mr · kc`).
///
/// Safety: as `pack_impl`'s general case, with `T = f32`, `mr % 8 == 0`,
/// `csa == 1`, and AVX2 available (`pack_impl`'s `avx2`).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn pack_f32_transposing(kc: usize, mc: usize, mr: usize, pack: *mut f32,
                               a: *const f32, rsa: isize) -> usize
{
    pack_f32_transposing_avx2(kc, mc, mr, pack, a, rsa)
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
unsafe fn pack_f32_transposing(_: usize, _: usize, _: usize, _: *mut f32,
                               _: *const f32, _: isize) -> usize
{
    unreachable!("transposing_f32_pack_applies is false off x86-64")
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn pack_f32_transposing_avx2(kc: usize, mc: usize, mr: usize, pack: *mut f32,
                                    a: *const f32, rsa: isize) -> usize
{
    use core::arch::x86_64::*;
    let mut p = 0;
    for ir in 0..mc / mr {
        let panel = a.offset(rsa * (ir * mr) as isize);
        let mut j = 0;
        while j + 8 <= kc {
            for g in 0..mr / 8 {
                // (a macro, not a closure: it must inline into this AVX2 function)
                macro_rules! row {
                    ($i:expr) => {
                        _mm256_loadu_ps(panel.offset(rsa * (g * 8 + $i) as isize).add(j))
                    };
                }
                let (r0, r1, r2, r3) = (row!(0), row!(1), row!(2), row!(3));
                let (r4, r5, r6, r7) = (row!(4), row!(5), row!(6), row!(7));
                // 8×8 transpose: t[c] holds column c (k = j + c) of rows 0..8.
                let u0 = _mm256_unpacklo_ps(r0, r1);
                let u1 = _mm256_unpackhi_ps(r0, r1);
                let u2 = _mm256_unpacklo_ps(r2, r3);
                let u3 = _mm256_unpackhi_ps(r2, r3);
                let u4 = _mm256_unpacklo_ps(r4, r5);
                let u5 = _mm256_unpackhi_ps(r4, r5);
                let u6 = _mm256_unpacklo_ps(r6, r7);
                let u7 = _mm256_unpackhi_ps(r6, r7);
                let s0 = _mm256_shuffle_ps::<0x44>(u0, u2);
                let s1 = _mm256_shuffle_ps::<0xEE>(u0, u2);
                let s2 = _mm256_shuffle_ps::<0x44>(u1, u3);
                let s3 = _mm256_shuffle_ps::<0xEE>(u1, u3);
                let s4 = _mm256_shuffle_ps::<0x44>(u4, u6);
                let s5 = _mm256_shuffle_ps::<0xEE>(u4, u6);
                let s6 = _mm256_shuffle_ps::<0x44>(u5, u7);
                let s7 = _mm256_shuffle_ps::<0xEE>(u5, u7);
                let t = [
                    _mm256_permute2f128_ps::<0x20>(s0, s4),
                    _mm256_permute2f128_ps::<0x20>(s1, s5),
                    _mm256_permute2f128_ps::<0x20>(s2, s6),
                    _mm256_permute2f128_ps::<0x20>(s3, s7),
                    _mm256_permute2f128_ps::<0x31>(s0, s4),
                    _mm256_permute2f128_ps::<0x31>(s1, s5),
                    _mm256_permute2f128_ps::<0x31>(s2, s6),
                    _mm256_permute2f128_ps::<0x31>(s3, s7),
                ];
                for (c, tc) in t.iter().enumerate() {
                    _mm256_storeu_ps(pack.add(p + c * mr + g * 8), *tc);
                }
            }
            p += 8 * mr;
            j += 8;
        }
        while j < kc {
            for i in 0..mr {
                *pack.add(p) = *panel.offset(rsa * i as isize).add(j);
                p += 1;
            }
            j += 1;
        }
    }
    p
}
