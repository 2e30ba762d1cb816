//! Simulated physical memory and a recording backend, for host tests and
//! host benchmarks (feature `sim`).
//!
//! The recording backend writes entries the native way (into simulated
//! memory) and logs every hook call, so tests can check the order of calls
//! and what each one carried.

extern crate std;

use core::cell::{RefCell, UnsafeCell};
use std::boxed::Box;
use std::vec::Vec;

use arch_i386::{Level, Pfn, PteFlags, VirtAddr};
use paravirt::{native, EntryRef, HvResult, Mmu, PagetableBuild, PhysMem, Pinning};

/// A kernel image as the tests and benchmarks lay it out: at 1 MiB, 256
/// KiB of text, 128 KiB of rodata, data up to 2 MiB.
pub fn image() -> crate::KernelImage {
    use arch_i386::VirtAddr;
    crate::KernelImage {
        text: VirtAddr(0xC010_0000),
        text_end: VirtAddr(0xC014_0000),
        rodata: VirtAddr(0xC014_0000),
        rodata_end: VirtAddr(0xC016_0000),
    }
}

/// One simulated frame: page-aligned, as a real frame is, so the 4- and
/// 8-byte entries in it are aligned for their width (Miri found the
/// `[u8; 4096]` this was before aligned to 1, and every pte read through
/// it undefined behaviour).
#[repr(C, align(4096))]
struct Frame(UnsafeCell<[u8; 4096]>);

/// `pages` frames of zeroed memory, frame n at index n.
pub struct SimMem {
    frames: Box<[Frame]>,
    /// Frames from here on are "high": not in the direct map, so
    /// `reachable` says no and the kernel must map them to use them.
    low: usize,
}

impl SimMem {
    pub fn new(pages: usize) -> SimMem {
        Self::with_highmem(pages, pages)
    }
    /// `pages` frames, those from `low` on beyond the direct map.
    pub fn with_highmem(pages: usize, low: usize) -> SimMem {
        let mut v = Vec::with_capacity(pages);
        v.resize_with(pages, || Frame(UnsafeCell::new([0u8; 4096])));
        SimMem { frames: v.into_boxed_slice(), low }
    }
    pub fn pages(&self) -> usize {
        self.frames.len()
    }
}

// SAFETY: each frame is its own page-aligned 4096-byte cell, alive as
// long as the SimMem; `reachable` answers exactly for the low frames that exist, and
// `mapped_at` hands out a frame's own cell.
unsafe impl PhysMem for SimMem {
    fn page(&self, pfn: Pfn) -> *mut u8 {
        self.frames
            .get(pfn.0 as usize)
            .unwrap_or_else(|| panic!("simulated access to pfn {:#x} beyond memory", pfn.0))
            .0
            .get() as *mut u8
    }
    fn reachable(&self, pfn: Pfn) -> bool {
        (pfn.0 as usize) < self.frames.len().min(self.low)
    }
    /// The simulated tables are never loaded, so a temporary mapping's
    /// address means nothing here: the frame's own storage stands in.
    fn mapped_at(&self, _va: VirtAddr, pfn: Pfn) -> *mut u8 {
        self.page(pfn)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    SetupStart(Pfn),
    /// The root, and how many fresh pages the build handed over.
    SetupDone(Pfn, u32),
    AllocPt(Pfn, Pinning),
    AllocPd(Pfn, Pinning),
    ReleasePt(Pfn, Pinning),
    ReleasePd(Pfn, Pinning),
    /// level, table, index, value, pinning of the table
    Set(Level, Pfn, u32, u64, Pinning),
    /// table, first index, count, first pfn, pinning
    SetRange(Pfn, u32, u32, Pfn, Pinning),
    Pin(Pfn, u32),
    Unpin(Pfn, u32),
    WriteCr3(Pfn),
    EnterLazy,
    LeaveLazy,
    Flush,
}

/// A backend that records and writes natively into simulated memory.
pub struct Recorder {
    pub events: RefCell<Vec<Event>>,
    /// The pagetable "we booted on": its kernel half is adopted in
    /// `pagetable_setup_start`, as the native 2-level path does.
    pub boot_root: Option<Pfn>,
    /// Log individual writes (off for benchmarks).
    pub record: bool,
    /// What `write_cr3` loaded last.
    pub cr3: core::cell::Cell<Pfn>,
    /// The address each pinned pte write says it maps (`EntryRef::vaddr`),
    /// which a shadowing hypervisor (lguest's SET_PTE) trusts.
    pub pinned_pte_vaddrs: RefCell<Vec<u32>>,
}

// SAFETY: host tests use one Recorder per thread; Mmu needs Sync only
// because kernel backends live in statics.
unsafe impl Sync for Recorder {}

impl Recorder {
    pub fn new(boot_root: Option<Pfn>) -> Recorder {
        Recorder {
            events: RefCell::new(Vec::new()),
            boot_root,
            record: true,
            cr3: core::cell::Cell::new(Pfn(0)),
            pinned_pte_vaddrs: RefCell::new(Vec::new()),
        }
    }
    fn log(&self, e: Event) {
        if self.record {
            self.events.borrow_mut().push(e);
        }
    }
}

impl Mmu for Recorder {
    fn pagetable_setup_start(&self, b: &mut PagetableBuild) -> HvResult {
        self.log(Event::SetupStart(b.root));
        if let Some(boot) = self.boot_root {
            native::copy_kernel_pgd(b, boot);
        }
        Ok(())
    }
    fn pagetable_setup_done(&self, b: PagetableBuild) -> HvResult {
        self.log(Event::SetupDone(b.root, b.fresh().count()));
        Ok(())
    }
    fn alloc_pt(&self, pfn: Pfn, p: Pinning) -> HvResult {
        self.log(Event::AllocPt(pfn, p));
        Ok(())
    }
    fn alloc_pd(&self, pfn: Pfn, p: Pinning) -> HvResult {
        self.log(Event::AllocPd(pfn, p));
        Ok(())
    }
    fn release_pt(&self, pfn: Pfn, p: Pinning) -> HvResult {
        self.log(Event::ReleasePt(pfn, p));
        Ok(())
    }
    fn release_pd(&self, pfn: Pfn, p: Pinning) -> HvResult {
        self.log(Event::ReleasePd(pfn, p));
        Ok(())
    }
    fn set_pte(&self, at: &EntryRef, val: u64) -> HvResult {
        self.log(Event::Set(Level::Pte, at.table(), at.index(), val, at.pinning()));
        if self.record && at.pinning() == Pinning::Pinned {
            self.pinned_pte_vaddrs.borrow_mut().push(at.vaddr().0);
        }
        native::write_entry(at, val);
        Ok(())
    }
    fn set_pte_range(&self, first: &EntryRef, count: u32, pfn: Pfn, flags: PteFlags) -> HvResult {
        self.log(Event::SetRange(first.table(), first.index(), count, pfn, first.pinning()));
        native::write_pte_range(first, count, pfn, flags);
        Ok(())
    }
    fn set_pmd(&self, at: &EntryRef, val: u64) -> HvResult {
        self.log(Event::Set(Level::Pmd, at.table(), at.index(), val, at.pinning()));
        native::write_entry(at, val);
        Ok(())
    }
    fn set_pgd(&self, at: &EntryRef, val: u64) -> HvResult {
        self.log(Event::Set(Level::Pgd, at.table(), at.index(), val, at.pinning()));
        native::write_entry(at, val);
        Ok(())
    }
    fn pin(&self, root: Pfn, tables: &mut dyn Iterator<Item = Pfn>) -> HvResult {
        self.log(Event::Pin(root, tables.count() as u32));
        Ok(())
    }
    fn unpin(&self, root: Pfn, tables: &mut dyn Iterator<Item = Pfn>) -> HvResult {
        self.log(Event::Unpin(root, tables.count() as u32));
        Ok(())
    }
    fn flush_tlb_single(&self, _: VirtAddr) -> HvResult {
        self.log(Event::Flush);
        Ok(())
    }
    fn flush_tlb_user(&self) -> HvResult {
        self.log(Event::Flush);
        Ok(())
    }
    fn flush_tlb_kernel(&self) -> HvResult {
        self.log(Event::Flush);
        Ok(())
    }
    fn enter_lazy_mmu(&self) {
        self.log(Event::EnterLazy);
    }
    fn leave_lazy_mmu(&self) -> HvResult {
        self.log(Event::LeaveLazy);
        Ok(())
    }
    fn read_cr3(&self) -> Pfn {
        self.cr3.get()
    }
    unsafe fn write_cr3(&self, root: Pfn) -> HvResult {
        self.log(Event::WriteCr3(root));
        self.cr3.set(root);
        Ok(())
    }
}

/// The native backend as it behaves on the host: every entry write,
/// allocation hook and range operation is the trait's native default; only
/// the CR3/CR4 work of `pagetable_setup_start/done`, which a host process
/// cannot do, is left out. For the dispatch benchmark.
pub struct NativeOnHost;

impl Mmu for NativeOnHost {
    fn pagetable_setup_start(&self, _: &mut PagetableBuild) -> HvResult {
        Ok(())
    }
    fn pagetable_setup_done(&self, _: PagetableBuild) -> HvResult {
        Ok(())
    }
}
