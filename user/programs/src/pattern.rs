//! What a child of init writes into its memory, and the checksum it reads
//! back.
//!
//! Page p of the region of process `pid` starts from a seed,
//! `fmix32(pid * GOLDEN + p)` (MurmurHash3's finaliser, a bijection, so no
//! two pages of a region share a seed, and another process's pages look
//! unrelated), and word j of the page holds `seed + j * STRIDE`.
//!
//! The checksum takes Fletcher's two sums of each page (s1 = sum of the
//! words, s2 = sum of the running s1) and folds them, page after page,
//! through a multiply-rotate step: a page lost (zero), left stale, mapped
//! twice or swapped with another changes it, and so does a page partly
//! copied. Within a page the pattern is linear, so both sums have a
//! closed form in the seed: init recomputes a child's checksum from its
//! pid and size with a few operations per page, touching no memory.

pub const WORDS_PER_PAGE: usize = 1024;
pub const PAGES_PER_MIB: u32 = 256;

/// Child i maps `region_mib(i, max_mib)` MiB: 1 to `max_mib`, spread so
/// that consecutive children differ.
pub fn region_mib(i: u32, max_mib: u32) -> u32 {
    1 + (i * 5) % max_mib.max(1)
}

const GOLDEN: u32 = 0x9E37_79B1;
const STRIDE: u32 = 0x0101_0101;

/// MurmurHash3's 32-bit finaliser: a bijection that mixes every input
/// bit into every output bit.
fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85EB_CA6B);
    h ^= h >> 13;
    h = h.wrapping_mul(0xC2B2_AE35);
    h ^ h >> 16
}

pub fn page_seed(pid: u32, page: u32) -> u32 {
    fmix32(pid.wrapping_mul(GOLDEN).wrapping_add(page))
}

/// Word j of a page whose seed is `seed`.
pub fn page_word(seed: u32, j: usize) -> u32 {
    seed.wrapping_add((j as u32).wrapping_mul(STRIDE))
}

/// Word k of `pid`'s region.
pub fn pattern(pid: u32, k: usize) -> u32 {
    page_word(page_seed(pid, (k / WORDS_PER_PAGE) as u32), k % WORDS_PER_PAGE)
}

/// Fletcher's sums of one page as read: (sum of words, sum of running sums).
fn page_sums(page: &[u32]) -> (u32, u32) {
    page.iter().fold((0u32, 0u32), |(s1, s2), &w| {
        let s1 = s1.wrapping_add(w);
        (s1, s2.wrapping_add(s1))
    })
}

/// The same for a page holding its pattern, from the seed alone. With
/// n = 1024 words seed + j * STRIDE: s1 = n seed + STRIDE n(n-1)/2, and
/// s2 = sum (n - j) w_j = seed n(n+1)/2 + STRIDE sum j(n - j).
fn expected_page_sums(seed: u32) -> (u32, u32) {
    const N: u64 = WORDS_PER_PAGE as u64;
    const SUM_J: u32 = (N * (N - 1) / 2) as u32;
    const SUM_N_MINUS_J: u32 = (N * (N + 1) / 2) as u32;
    const SUM_J_N_MINUS_J: u32 = ((N - 1) * N * (N + 1) / 6) as u32;
    let s1 = seed.wrapping_mul(N as u32).wrapping_add(STRIDE.wrapping_mul(SUM_J));
    let s2 = seed.wrapping_mul(SUM_N_MINUS_J).wrapping_add(STRIDE.wrapping_mul(SUM_J_N_MINUS_J));
    (s1, s2)
}

/// One page's step of the region's checksum.
fn fold(sum: u32, (s1, s2): (u32, u32)) -> u32 {
    (sum.rotate_left(7) ^ s1).wrapping_mul(GOLDEN) ^ s2
}

/// The checksum of a region of whole pages, as read from memory.
pub fn checksum(words: &[u32]) -> u32 {
    assert!(words.len().is_multiple_of(WORDS_PER_PAGE), "a region is whole pages");
    words.chunks(WORDS_PER_PAGE).map(page_sums).fold(0, fold)
}

/// `checksum` of the first `pages` pages of `pid`'s pattern, computed.
pub fn expected_checksum(pid: u32, pages: u32) -> u32 {
    (0..pages).map(|p| expected_page_sums(page_seed(pid, p))).fold(0, fold)
}

/// The checksum folded to the 7 bits a child's exit code carries.
pub fn hash7(sum: u32) -> u8 {
    ((sum ^ sum >> 7 ^ sum >> 14 ^ sum >> 21 ^ sum >> 28) & 0x7F) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(pid: u32, pages: u32) -> Vec<u32> {
        (0..pages as usize * WORDS_PER_PAGE).map(|k| pattern(pid, k)).collect()
    }

    #[test]
    fn the_closed_form_is_the_sum() {
        for pid in [0, 1, 2, 77, u32::MAX] {
            for pages in [0, 1, 2, 3, 256, 257] {
                assert_eq!(
                    checksum(&filled(pid, pages)),
                    expected_checksum(pid, pages),
                    "pid {pid}, {pages} pages"
                );
            }
        }
    }

    #[test]
    fn every_page_fault_the_workload_looks_for_changes_the_sum() {
        let good = filled(5, 256);
        let sum = checksum(&good);
        // Two pages swapped.
        let mut w = good.clone();
        let (a, b) = w.split_at_mut(WORDS_PER_PAGE * 9);
        a[..WORDS_PER_PAGE].swap_with_slice(&mut b[..WORDS_PER_PAGE]);
        assert_ne!(checksum(&w), sum, "swapped");
        // Every page mapping the last one's frame.
        let mut w = good.clone();
        let last = w[255 * WORDS_PER_PAGE..].to_vec();
        w.chunks_mut(WORDS_PER_PAGE).for_each(|p| p.copy_from_slice(&last));
        assert_ne!(checksum(&w), sum, "aliased");
        // One page lost (a fresh zero page), half a page not copied, one
        // word changed.
        for (what, r) in [("lost", 0..WORDS_PER_PAGE), ("half", 512..WORDS_PER_PAGE), ("word", 77..78)] {
            let mut w = good.clone();
            w[100 * WORDS_PER_PAGE..][r].fill(0);
            assert_ne!(checksum(&w), sum, "{what}");
        }
        // Another process's pattern.
        assert_ne!(checksum(&filled(6, 256)), sum, "another pid");
        assert_ne!(hash7(expected_checksum(6, 256)), hash7(sum), "another pid's hash");
    }

    #[test]
    fn pages_of_a_region_never_share_a_seed() {
        let mut seeds: Vec<u32> = (0..16 * PAGES_PER_MIB).map(|p| page_seed(3, p)).collect();
        seeds.sort();
        seeds.dedup();
        assert_eq!(seeds.len(), 16 * PAGES_PER_MIB as usize);
    }

    #[test]
    fn hashes_spread_over_pids() {
        // Init tells children apart by these: of 128 pids with 16 MiB
        // regions, most have distinct hashes.
        let mut hashes: Vec<u8> =
            (1..129).map(|pid| hash7(expected_checksum(pid, 16 * PAGES_PER_MIB))).collect();
        hashes.sort();
        hashes.dedup();
        assert!(hashes.len() > 64, "{} distinct", hashes.len());
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
