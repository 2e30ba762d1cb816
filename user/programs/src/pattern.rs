//! What a child of init writes into its memory, and the checksum it reads
//! back.
//!
//! Word k of the region of process `pid` holds `pattern(pid, k)`: every
//! word of a region differs from every other (the multiplier is odd), and
//! from the same word of another process's region. The checksum weighs
//! each word by its position, `sum of w[k] * (2k + 1)` (wrapping), so it
//! notices pages that are swapped or that alias one frame, not only bytes
//! that changed; and for this pattern it has a closed form, so init checks
//! a child's result without touching a word of memory.

/// Child i maps `region_mib(i, max_mib)` MiB: 1 to `max_mib`, spread so
/// that consecutive children differ.
pub fn region_mib(i: u32, max_mib: u32) -> u32 {
    1 + (i * 5) % max_mib.max(1)
}

pub const WORDS_PER_MIB: u32 = (1 << 20) / 4;
pub const WORDS_PER_PAGE: usize = 1024;

/// Odd, so `k -> k * STRIDE` is a permutation of the u32s.
const STRIDE: u32 = 0x9E37_79B1;
const PID_MIX: u32 = 0x85EB_CA6B;

pub fn pattern(pid: u32, k: u32) -> u32 {
    k.wrapping_mul(STRIDE).wrapping_add(pid.wrapping_mul(PID_MIX))
}

/// The weighted checksum of `words`, as read from memory.
pub fn checksum(words: &[u32]) -> u32 {
    let mut weight = 1u32;
    let mut sum = 0u32;
    for &w in words {
        sum = sum.wrapping_add(w.wrapping_mul(weight));
        weight = weight.wrapping_add(2);
    }
    sum
}

/// `checksum` of the first `n` words of `pid`'s pattern, computed:
/// sum (STRIDE k + P)(2k + 1) = STRIDE * n(n-1)(4n+1)/6 + P * n^2,
/// with P = pid * PID_MIX.
pub fn expected_checksum(pid: u32, n: u32) -> u32 {
    let n = n as u128;
    // n(n-1)(4n+1) is always divisible by 6, and fits easily in u128.
    let weights = (n * n.saturating_sub(1) * (4 * n + 1) / 6) as u32;
    let squares = (n * n) as u32;
    STRIDE.wrapping_mul(weights).wrapping_add(pid.wrapping_mul(PID_MIX).wrapping_mul(squares))
}

/// The checksum folded to the 7 bits a child's exit code carries.
pub fn hash7(sum: u32) -> u8 {
    ((sum ^ sum >> 7 ^ sum >> 14 ^ sum >> 21 ^ sum >> 28) & 0x7F) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(pid: u32, n: u32) -> Vec<u32> {
        (0..n).map(|k| pattern(pid, k)).collect()
    }

    #[test]
    fn the_closed_form_is_the_sum() {
        for pid in [0, 1, 2, 77, u32::MAX] {
            for n in [0, 1, 2, 3, 5, 1024, 4099, WORDS_PER_MIB] {
                assert_eq!(checksum(&filled(pid, n)), expected_checksum(pid, n), "pid {pid}, {n} words");
            }
        }
    }

    #[test]
    fn a_large_region_does_not_overflow_the_closed_form() {
        // 255 MiB, the most init's argument can ask for.
        let n = 255 * WORDS_PER_MIB;
        let mut sum = 0u32;
        for k in 0..n {
            sum = sum.wrapping_add(pattern(9, k).wrapping_mul(2 * k + 1));
        }
        assert_eq!(sum, expected_checksum(9, n));
    }

    #[test]
    fn swapped_or_aliased_pages_change_the_sum() {
        let mut w = filled(5, 4 * 1024);
        let good = checksum(&w);
        let (a, b) = w.split_at_mut(1024);
        a.swap_with_slice(&mut b[..1024]);
        assert_ne!(checksum(&w), good);
        let mut w = filled(5, 4 * 1024);
        let last = w[3 * 1024..].to_vec();
        for page in w.chunks_mut(1024) {
            page.copy_from_slice(&last);
        }
        assert_ne!(checksum(&w), good);
    }

    #[test]
    fn regions_are_one_to_max_mib() {
        let sizes: Vec<u32> = (0..8).map(|i| region_mib(i, 16)).collect();
        assert_eq!(sizes, [1, 6, 11, 16, 5, 10, 15, 4]);
        assert!((0..64).all(|i| (1..=16).contains(&region_mib(i, 16))));
        assert_eq!(region_mib(3, 1), 1);
        assert_eq!(region_mib(3, 0), 1);
    }
}
