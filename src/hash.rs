//! The two integer hashes behind every random choice made during training
//! (dropout masks, augmentation draws): a random number is a hash of where it
//! is used, not a draw from a stream, so it does not depend on which thread
//! or block computes it.

/// 24 random bits for unit `j` of a row with key `row_key`: murmur3's
/// 32-bit finaliser, which vectorises (the per-row key carries the entropy).
#[inline]
pub(crate) fn unit_bits(row_key: u32, j: usize) -> u32 {
    let mut x = row_key ^ j as u32;
    x ^= x >> 16;
    x = x.wrapping_mul(0x85eb_ca6b);
    x ^= x >> 13;
    x = x.wrapping_mul(0xc2b2_ae35);
    x ^= x >> 16;
    x >> 8
}

/// SplitMix64's finaliser: a fast, well-mixed 64-bit hash.
#[inline]
pub(crate) fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
