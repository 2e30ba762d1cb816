//! Pseudo-physical to machine frames and back.
//!
//! A PV guest's "physical" frames (pfns) are its own numbering, 0 to
//! nr_pages; the MMU sees machine frames (mfns), wherever Xen put the
//! pages. Pagetable entries hold mfns. Xen gives the guest the p2m table
//! (`start_info.mfn_list`, one u32 per pfn) and maps the global read-only
//! m2p table in the hypervisor's part of the address space. A frame is
//! ours when the two agree: `p2m[m2p[mfn]] == mfn`.
//!
//! Both tables are read with volatile loads through raw pointers, never
//! as Rust slices: Xen rewrites m2p entries of other domains' frames at
//! any time, and the guest's p2m is ours to change later (ballooning).

use arch_i386::Pfn;

#[derive(Clone, Copy, Debug)]
pub struct P2m {
    p2m: *const u32,
    nr_pages: u32,
    m2p: *const u32,
    /// Highest machine frame the m2p covers.
    max_mfn: u32,
}

// SAFETY: the tables are read-only for us (volatile loads only) and the
// kernel runs on one CPU.
unsafe impl Send for P2m {}
// SAFETY: as above.
unsafe impl Sync for P2m {}

impl P2m {
    /// # Safety
    /// `p2m` must point at `nr_pages` readable u32s and `m2p` at
    /// `max_mfn + 1` readable u32s, for as long as the value is used.
    pub const unsafe fn new(p2m: *const u32, nr_pages: u32, m2p: *const u32, max_mfn: u32) -> P2m {
        P2m { p2m, nr_pages, m2p, max_mfn }
    }

    pub fn nr_pages(&self) -> u32 {
        self.nr_pages
    }

    /// The machine frame behind `pfn`, if `pfn` is ours.
    pub fn mfn(&self, pfn: Pfn) -> Option<u32> {
        if pfn.0 >= self.nr_pages {
            return None;
        }
        // SAFETY: pfn < nr_pages: inside the p2m table (constructor's
        // contract).
        Some(unsafe { self.p2m.add(pfn.0 as usize).read_volatile() })
    }

    /// The pfn of a machine frame, if the frame is ours.
    pub fn pfn(&self, mfn: u32) -> Option<Pfn> {
        if mfn > self.max_mfn {
            return None;
        }
        // SAFETY: mfn <= max_mfn: inside the m2p table.
        let p = Pfn(unsafe { self.m2p.add(mfn as usize).read_volatile() });
        (self.mfn(p) == Some(mfn)).then_some(p)
    }

    /// How many frames from `pfn` on are machine-contiguous with it (at
    /// most `max`): runs the bulk path can fill like native memory.
    pub fn contiguous(&self, pfn: Pfn, max: u32) -> u32 {
        let Some(first) = self.mfn(pfn) else { return 0 };
        let mut n = 1;
        while n < max && self.mfn(pfn.add(n)) == Some(first.wrapping_add(n)) {
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::table;

    #[test]
    fn round_trips_and_refuses_foreign_frames() {
        // Two runs of machine frames, as Xen hands dom0 its memory.
        let t = table(1024, |p| if p < 600 { 0x8000 + p } else { 0x2_0000 + p });
        assert_eq!(t.mfn(Pfn(5)), Some(0x8005));
        assert_eq!(t.pfn(0x8005), Some(Pfn(5)));
        assert_eq!(t.mfn(Pfn(1024)), None);
        // A machine frame no pfn of ours maps, and one beyond the m2p.
        assert_eq!(t.pfn(0x9000), None);
        assert_eq!(t.pfn(0xFFFF_FFFF), None);
        assert_eq!(t.contiguous(Pfn(590), 100), 10);
        assert_eq!(t.contiguous(Pfn(600), 100), 100);
        assert_eq!(t.contiguous(Pfn(2000), 100), 0);
    }
}
