//! The `Hypervisor` trait: paravirt_ops as a Rust trait with native
//! defaults.
//!
//! Every method that touches the machine defaults to what bare hardware
//! needs (see [`crate::native`]); every hook the hardware does not need
//! defaults to nothing. A backend implements `name` and `detect` and then
//! overrides only where its platform differs, so its impl reads as the list
//! of those differences.

use arch_i386::cpu::CpuFeatures;
use arch_i386::{PagingMode, Pfn, PteFlags, VirtAddr};

use crate::{native, BootInfo, Counters, EntryRef, ExitStatus, HvResult, PageAlloc, PhysMem};

/// A backend's answer to "is this your platform?".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detected {
    /// Higher wins. Boot-protocol evidence (Xen's start_info, lguest's
    /// boot_params) is certain: 100. CPUID evidence: 50. Native: 0.
    pub priority: u8,
    /// Why, for the boot log.
    pub why: &'static str,
}

/// `Ok` if detected, `Err(why not)` otherwise.
pub type Verdict = Result<Detected, &'static str>;

/// What the pagetable hooks work on.
pub struct PagetableSetup<'a> {
    pub mode: PagingMode,
    /// The kernel's top-level page (Linux's swapper_pg_dir). Empty when
    /// `pagetable_setup_start` is called; the backend may fill it from the
    /// pagetable it booted on.
    pub base: Pfn,
    pub mem: &'a dyn PhysMem,
    pub alloc: &'a mut dyn PageAlloc,
    pub large_pages: bool,
    pub global_pages: bool,
    pub nx: bool,
    /// Where the kernel's direct map of low memory ends (a virtual
    /// address). Above it lies the vmalloc area, which must start empty: a
    /// backend adopting a map that covers more memory than that (lguest's
    /// Launcher maps all guest memory) keeps only what is below.
    pub direct_map_end: u32,
}

pub trait Hypervisor: Sync {
    /// The backend's name, as `hypervisor=NAME` spells it.
    fn name(&self) -> &'static str;

    /// Is this the platform we booted on? Must not touch the machine beyond
    /// reading `boot`: it runs for every backend before any is chosen.
    fn detect(&self, boot: &BootInfo) -> Verdict;

    /// Called once, right after this backend is chosen and before anything
    /// else of it: hypercall set-up, registering shared structures, filling
    /// in what the boot protocol did not say (e.g. the memory map).
    fn init(&self, _boot: &mut BootInfo) -> HvResult {
        Ok(())
    }

    /// Paging formats this platform can run, most preferred first.
    fn paging_modes(&self, cpu: &CpuFeatures) -> &'static [PagingMode] {
        if cpu.pae {
            &[PagingMode::Pae, PagingMode::TwoLevel]
        } else {
            &[PagingMode::TwoLevel]
        }
    }

    /// May the direct map use large pages?
    fn large_pages(&self, cpu: &CpuFeatures) -> bool {
        cpu.pse
    }

    /// May kernel mappings be global?
    fn global_pages(&self, cpu: &CpuFeatures) -> bool {
        cpu.pge
    }

    /// Bytes at the top of the address space the hypervisor keeps for
    /// itself (Linux's `reserve_top_address`): the fixmap goes below them.
    fn reserved_top(&self) -> u32 {
        0
    }

    /// Must every pagetable page be mapped read-only in the kernel's map?
    /// (Xen PV: yes, it refuses to use a writable page as a pagetable.)
    fn pagetable_pages_readonly(&self) -> bool {
        false
    }

    // ---- The seed patch's hooks -------------------------------------------

    /// Before the kernel builds its pagetable in `pt.base`.
    fn pagetable_setup_start(&self, pt: &mut PagetableSetup) -> HvResult {
        native::pagetable_setup_start(pt)
    }

    /// After it: make `pt.base` the live pagetable.
    fn pagetable_setup_done(&self, pt: &mut PagetableSetup) -> HvResult {
        native::pagetable_setup_done(pt)
    }

    /// `pfn` is about to become a pte page.
    fn alloc_pt(&self, _pfn: Pfn) -> HvResult {
        Ok(())
    }

    /// `pfn` is about to become a pmd page (PAE) or a pgd (2-level).
    fn alloc_pd(&self, _pfn: Pfn) -> HvResult {
        Ok(())
    }

    /// `pfn` stops being a pte page.
    fn release_pt(&self, _pfn: Pfn) -> HvResult {
        Ok(())
    }

    /// `pfn` stops being a pmd/pgd page.
    fn release_pd(&self, _pfn: Pfn) -> HvResult {
        Ok(())
    }

    // ---- Entries ----------------------------------------------------------

    /// The raw entry mapping `pfn` with `flags` (Xen: the machine frame).
    fn make_pte(&self, pfn: Pfn, flags: PteFlags) -> u64 {
        pfn.addr().0 | flags.bits()
    }

    /// The frame a raw entry points at (Xen: machine frame -> pfn).
    fn pte_pfn(&self, mode: PagingMode, raw: u64) -> Pfn {
        Pfn(((raw & mode.addr_mask()) >> 12) as u32)
    }

    fn set_pte(&self, at: &EntryRef, val: u64) -> HvResult {
        native::write_entry(at, val);
        Ok(())
    }

    /// Writes `count` ptes from `first` on, mapping `pfn`, `pfn + 1`, ...
    /// The direct map's bulk path: one call per run, not per entry.
    fn set_pte_range(&self, first: &EntryRef, count: u32, pfn: Pfn, flags: PteFlags) -> HvResult {
        native::write_pte_range(first, count, pfn, flags);
        Ok(())
    }

    /// A pmd entry (in 2-level: a pgd entry, the pmd being folded).
    fn set_pmd(&self, at: &EntryRef, val: u64) -> HvResult {
        native::write_entry(at, val);
        Ok(())
    }

    /// A PAE pgd (PDPT) entry.
    fn set_pgd(&self, at: &EntryRef, val: u64) -> HvResult {
        native::write_entry(at, val);
        Ok(())
    }

    // ---- TLB and CR3 ------------------------------------------------------

    fn flush_tlb_single(&self, va: VirtAddr) -> HvResult {
        native::flush_tlb_single(va);
        Ok(())
    }

    fn flush_tlb_user(&self) -> HvResult {
        native::flush_tlb_user();
        Ok(())
    }

    fn flush_tlb_kernel(&self) -> HvResult {
        native::flush_tlb_kernel();
        Ok(())
    }

    /// The frame of the live top-level pagetable (a pfn, not a machine
    /// frame, whatever the platform).
    fn read_cr3(&self) -> Pfn {
        Pfn(arch_i386::cr::read_cr3() >> 12)
    }

    /// The faulting address of the last page fault.
    fn read_cr2(&self) -> u32 {
        arch_i386::cr::read_cr2()
    }

    fn write_cr3(&self, root: Pfn) -> HvResult {
        arch_i386::cr::write_cr3(root.addr().0 as u32);
        Ok(())
    }

    // ---- Batching ---------------------------------------------------------

    /// From here until `leave_lazy_mmu`, updates may be queued.
    fn enter_lazy_mmu(&self) {}

    /// Issue everything queued; errors of queued updates surface here.
    fn leave_lazy_mmu(&self) -> HvResult {
        Ok(())
    }

    // ---- CPU tables -------------------------------------------------------

    /// Load the kernel's IDT (`gates` are 32-bit gate descriptors).
    ///
    /// # Safety
    /// `gates` must live forever and point at valid handlers.
    unsafe fn load_idt(&self, gates: &'static [u64]) -> HvResult {
        #[cfg(target_arch = "x86")]
        // SAFETY: forwarded to the caller.
        unsafe {
            arch_i386::desc::load_idt(&arch_i386::desc::TablePointer::of(gates));
        }
        #[cfg(not(target_arch = "x86"))]
        let _ = gates;
        Ok(())
    }

    // ---- Console and power ------------------------------------------------

    fn console_write(&self, bytes: &[u8]) {
        native::console_write(bytes)
    }

    /// Ends the run with `status`; never returns.
    fn shutdown(&self, status: ExitStatus) -> ! {
        native::shutdown(status)
    }

    /// Hypercalls made so far and what they carried (native: none).
    fn counters(&self) -> Counters {
        Counters::default()
    }
}
