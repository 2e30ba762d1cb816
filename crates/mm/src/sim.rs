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
use paravirt::{
    native, BootInfo, Detected, EntryRef, HvResult, Hypervisor, PagetableSetup, PhysMem, Verdict,
};

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

/// `pages` frames of zeroed memory, frame n at index n.
pub struct SimMem {
    frames: Box<[UnsafeCell<[u8; 4096]>]>,
}

impl SimMem {
    pub fn new(pages: usize) -> SimMem {
        let mut v = Vec::with_capacity(pages);
        v.resize_with(pages, || UnsafeCell::new([0u8; 4096]));
        SimMem { frames: v.into_boxed_slice() }
    }
    pub fn pages(&self) -> usize {
        self.frames.len()
    }
}

impl PhysMem for SimMem {
    fn page(&self, pfn: Pfn) -> *mut u8 {
        self.frames
            .get(pfn.0 as usize)
            .unwrap_or_else(|| panic!("simulated access to pfn {:#x} beyond memory", pfn.0))
            .get() as *mut u8
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    SetupStart(Pfn),
    SetupDone(Pfn),
    AllocPt(Pfn),
    AllocPd(Pfn),
    /// level, table, index, value
    Set(Level, Pfn, u32, u64),
    /// table, first index, count, first pfn
    SetRange(Pfn, u32, u32, Pfn),
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
}

// SAFETY: host tests use one Recorder per thread; Hypervisor needs Sync
// only because kernel backends live in statics.
unsafe impl Sync for Recorder {}

impl Recorder {
    pub fn new(boot_root: Option<Pfn>) -> Recorder {
        Recorder { events: RefCell::new(Vec::new()), boot_root, record: true }
    }
    fn log(&self, e: Event) {
        if self.record {
            self.events.borrow_mut().push(e);
        }
    }
}

impl Hypervisor for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn detect(&self, _: &BootInfo) -> Verdict {
        Ok(Detected { priority: 0, why: "test" })
    }
    fn pagetable_setup_start(&self, pt: &mut PagetableSetup) -> HvResult {
        self.log(Event::SetupStart(pt.base));
        if let Some(boot) = self.boot_root {
            native::copy_kernel_pgd(pt, boot);
        }
        Ok(())
    }
    fn pagetable_setup_done(&self, pt: &mut PagetableSetup) -> HvResult {
        self.log(Event::SetupDone(pt.base));
        Ok(())
    }
    fn alloc_pt(&self, pfn: Pfn) -> HvResult {
        self.log(Event::AllocPt(pfn));
        Ok(())
    }
    fn alloc_pd(&self, pfn: Pfn) -> HvResult {
        self.log(Event::AllocPd(pfn));
        Ok(())
    }
    fn set_pte(&self, at: &EntryRef, val: u64) -> HvResult {
        self.log(Event::Set(Level::Pte, at.table, at.index, val));
        native::write_entry(at, val);
        Ok(())
    }
    fn set_pte_range(&self, first: &EntryRef, count: u32, pfn: Pfn, flags: PteFlags) -> HvResult {
        self.log(Event::SetRange(first.table, first.index, count, pfn));
        native::write_pte_range(first, count, pfn, flags);
        Ok(())
    }
    fn set_pmd(&self, at: &EntryRef, val: u64) -> HvResult {
        self.log(Event::Set(Level::Pmd, at.table, at.index, val));
        native::write_entry(at, val);
        Ok(())
    }
    fn set_pgd(&self, at: &EntryRef, val: u64) -> HvResult {
        self.log(Event::Set(Level::Pgd, at.table, at.index, val));
        native::write_entry(at, val);
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
        panic!("read_cr3 on the recorder: pass the root explicitly")
    }
    fn write_cr3(&self, _: Pfn) -> HvResult {
        Ok(())
    }
    fn console_write(&self, _: &[u8]) {}
    fn shutdown(&self, status: paravirt::ExitStatus) -> ! {
        panic!("shutdown({status:?}) on the recorder")
    }
}

/// The native backend as it behaves on the host: every entry write,
/// allocation hook and range operation is the trait's native default; only
/// the CR3/CR4 work of `pagetable_setup_start/done`, which a host process
/// cannot do, is left out. For the dispatch benchmark.
pub struct NativeOnHost;

impl Hypervisor for NativeOnHost {
    fn name(&self) -> &'static str {
        "native-on-host"
    }
    fn detect(&self, _: &BootInfo) -> Verdict {
        Ok(Detected { priority: 0, why: "host" })
    }
    fn pagetable_setup_start(&self, _: &mut PagetableSetup) -> HvResult {
        Ok(())
    }
    fn pagetable_setup_done(&self, _: &mut PagetableSetup) -> HvResult {
        Ok(())
    }
}
