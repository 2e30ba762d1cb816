//! Anonymous memory: `mmap` hands out a `Region`, the only way this
//! library makes slices of memory the kernel gave.
//!
//! A `Region` owns its pages: it is not `Clone`, `split_at_page` divides
//! it into two that share no page, and `unmap` consumes it, so no slice of
//! an unmapped page can outlive the call. Dropping one leaves its pages
//! mapped (a leak, not a dangling reference). After a fork each process's
//! `Region` names its own copy of the pages.

use user_abi::{nr, USER_TOP};

use crate::{raw, Errno};

pub const PAGE_SIZE: usize = 4096;

/// Whole pages of anonymous, zero-filled, read-write memory.
#[derive(Debug)]
pub struct Region {
    start: usize,
    pages: usize,
}

/// `len` bytes, rounded up to pages, faulted in on first touch.
pub fn mmap(len: usize) -> Result<Region, Errno> {
    // SAFETY: MMAP takes no pointer and maps only pages nothing uses.
    let start = Errno::check(unsafe { raw::syscall1(nr::MMAP, len as u32) })? as usize;
    let pages = len.div_ceil(PAGE_SIZE);
    // The slices `words` makes rest on this: page-aligned user memory.
    let inside = start.checked_add(pages * PAGE_SIZE).is_some_and(|end| end <= USER_TOP as usize);
    assert!(start != 0 && start.is_multiple_of(PAGE_SIZE) && inside, "mmap({len}) returned {start:#x}");
    Ok(Region { start, pages })
}

impl Region {
    pub fn start(&self) -> usize {
        self.start
    }

    pub fn pages(&self) -> usize {
        self.pages
    }

    /// The memory as 32-bit words.
    pub fn words(&mut self) -> &mut [u32] {
        // SAFETY: the kernel mapped these pages read-write for this
        // process (`mmap`), page alignment satisfies u32's, every bit
        // pattern is a u32, and this Region is the only owner of these
        // pages (see the module doc), borrowed mutably for the slice's life.
        unsafe { core::slice::from_raw_parts_mut(self.start as *mut u32, self.pages * PAGE_SIZE / 4) }
    }

    /// The first `pages` pages, and the rest.
    pub fn split_at_page(self, pages: usize) -> (Region, Region) {
        assert!(pages <= self.pages, "split at page {pages} of {}", self.pages);
        let rest = Region { start: self.start + pages * PAGE_SIZE, pages: self.pages - pages };
        (Region { start: self.start, pages }, rest)
    }

    /// Gives the pages back (munmap).
    pub fn unmap(self) -> Result<(), Errno> {
        let len = self.pages * PAGE_SIZE;
        // SAFETY: `self` is consumed and owned these pages alone, so no
        // reference to them survives the call.
        Errno::check(unsafe { raw::syscall2(nr::MUNMAP, self.start as u32, len as u32) }).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_shares_no_page() {
        let r = Region { start: 0x4000_0000, pages: 5 };
        let (a, b) = r.split_at_page(2);
        assert_eq!((a.start, a.pages), (0x4000_0000, 2));
        assert_eq!((b.start, b.pages), (0x4000_2000, 3));
    }

    #[test]
    fn off_the_kernel_mmap_is_enosys() {
        assert_eq!(mmap(4096).unwrap_err(), Errno::ENOSYS);
    }
}
