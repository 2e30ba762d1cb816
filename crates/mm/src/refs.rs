//! How many address spaces map each user frame: fork shares a parent's
//! pages with the child (copy-on-write) instead of copying them, so a frame
//! goes back to the allocator only when its last mapping goes.
//!
//! One byte per frame of RAM (Linux keeps `_mapcount` in `struct page`).
//! A frame mapped by 255 address spaces at once is refused a 256th: fork
//! fails with ENOMEM rather than wrap the count.

use arch_i386::Pfn;

pub struct FrameRefs<'a> {
    counts: &'a mut [u8],
}

/// A frame already mapped as often as a count can say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Saturated(pub Pfn);

impl<'a> FrameRefs<'a> {
    /// Counts for frames below `counts.len()`, all zero.
    pub fn new(counts: &'a mut [u8]) -> FrameRefs<'a> {
        counts.fill(0);
        FrameRefs { counts }
    }

    pub fn get(&self, pfn: Pfn) -> u8 {
        self.counts[pfn.0 as usize]
    }

    /// A newly allocated user frame: mapped once.
    pub fn first(&mut self, pfn: Pfn) {
        debug_assert_eq!(self.counts[pfn.0 as usize], 0, "a fresh frame already mapped");
        self.counts[pfn.0 as usize] = 1;
    }

    /// One more mapping of `pfn`.
    pub fn share(&mut self, pfn: Pfn) -> Result<(), Saturated> {
        let c = &mut self.counts[pfn.0 as usize];
        *c = c.checked_add(1).ok_or(Saturated(pfn))?;
        Ok(())
    }

    /// One mapping fewer; `true` when that was the last (free the frame).
    pub fn put(&mut self, pfn: Pfn) -> bool {
        let c = &mut self.counts[pfn.0 as usize];
        assert!(*c > 0, "pfn {:#x}: more unmappings than mappings", pfn.0);
        *c -= 1;
        *c == 0
    }

    /// Frames mapped at least once (the leak check at the end).
    pub fn in_use(&self) -> usize {
        self.counts.iter().filter(|&&c| c != 0).count()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn shares_and_frees_at_the_last_put() {
        let mut c = std::vec![7u8; 16];
        let mut r = FrameRefs::new(&mut c);
        r.first(Pfn(3));
        r.share(Pfn(3)).unwrap();
        assert!(!r.put(Pfn(3)));
        assert!(r.put(Pfn(3)));
        assert_eq!(r.in_use(), 0);
        r.first(Pfn(4));
        for _ in 0..254 {
            r.share(Pfn(4)).unwrap();
        }
        assert_eq!(r.share(Pfn(4)), Err(Saturated(Pfn(4))));
    }
}
