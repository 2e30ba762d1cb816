//! Pseudo-physical to machine frames and back.
//!
//! A PV guest's "physical" frames (pfns) are its own numbering, 0 to
//! nr_pages; the MMU sees machine frames (mfns), wherever Xen put the
//! pages. Pagetable entries hold mfns. Xen gives the guest the p2m table
//! (`start_info.mfn_list`, one u32 per pfn) and maps the global read-only
//! m2p table in the hypervisor's part of the address space. A frame is
//! ours when the two agree: `p2m[m2p[mfn]] == mfn`.

use core::sync::atomic::{AtomicU32, Ordering};

use arch_i386::Pfn;

static MFN_LIST: AtomicU32 = AtomicU32::new(0);
static NR_PAGES: AtomicU32 = AtomicU32::new(0);
static M2P: AtomicU32 = AtomicU32::new(0);
static MAX_MFN: AtomicU32 = AtomicU32::new(0);

/// `mfn_list` and `m2p` are virtual addresses of the two tables.
pub fn init(mfn_list: u32, nr_pages: u32, m2p: u32, max_mfn: u32) {
    MFN_LIST.store(mfn_list, Ordering::Relaxed);
    NR_PAGES.store(nr_pages, Ordering::Relaxed);
    M2P.store(m2p, Ordering::Relaxed);
    MAX_MFN.store(max_mfn, Ordering::Relaxed);
}

/// The machine frame behind `pfn` (all ones if `pfn` is not ours).
pub fn mfn(pfn: Pfn) -> u32 {
    if pfn.0 >= NR_PAGES.load(Ordering::Relaxed) {
        return u32::MAX;
    }
    let list = MFN_LIST.load(Ordering::Relaxed) as *const u32;
    // SAFETY: Xen maps the p2m list (nr_pages entries) in the initial
    // mapping, and it is never unmapped.
    unsafe { list.add(pfn.0 as usize).read_volatile() }
}

/// The pfn of a machine frame, if the frame is ours.
pub fn pfn(mfn: u32) -> Option<Pfn> {
    if mfn > MAX_MFN.load(Ordering::Relaxed) {
        return None;
    }
    let m2p = M2P.load(Ordering::Relaxed) as *const u32;
    // SAFETY: Xen maps the m2p table read-only for every guest, covering
    // mfns up to max_mfn.
    let p = unsafe { m2p.add(mfn as usize).read_volatile() };
    (self::mfn(Pfn(p)) == mfn).then_some(Pfn(p))
}
