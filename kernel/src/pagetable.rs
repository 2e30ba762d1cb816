//! The kernel's own pagetable: the layout, the boot allocator, the seed's
//! build through the backend's MMU ops, `mark_rodata_ro`, and the
//! self-check of the live result.

use arch_i386::layout::{KERNEL_PHYS_START, PAGE_OFFSET};
use arch_i386::{Pfn, VirtAddr};
use mm::check::Report;
use mm::walk::Walker;
use mm::{BootAlloc, KernelImage, Layout, Pagetable};
use paravirt::{BootInfo, Hypervisor};

use crate::devirt::devirt;
use crate::mem::DirectMap;
use crate::paging::Paging;
use crate::{fail, head, kprintln, perf, selfcheck};

/// Room the kernel needs beyond its image: pagetable pages and the like.
const MIN_FREE: u64 = 512 << 10;

/// What the boot left: the live pagetable and how memory is laid out.
pub struct Booted {
    pub layout: Layout,
    pub pt: Pagetable,
    pub paging: Paging,
    /// The direct map as the live pagetable maps it (all of low memory).
    pub mem: DirectMap,
    pub report: Report,
    /// Frames the boot allocator handed out (runs): in use for good.
    pub used: [(Pfn, Pfn); mm::bootmem::MAX_FREE],
    pub nused: usize,
}

fn image() -> KernelImage {
    let sym = head::symbols();
    KernelImage {
        text: VirtAddr(sym.text),
        text_end: VirtAddr(sym.etext),
        rodata: VirtAddr(sym.rodata),
        rodata_end: VirtAddr(sym.erodata),
    }
}

/// The layout of the kernel's address space, or the end of the run if
/// memory is too small.
pub fn layout(hv: &dyn Hypervisor, boot: &BootInfo, paging: &Paging) -> Layout {
    let sym = head::symbols();
    let ram_end = boot.memory.ram_end_below_4g();
    // The image plus room for early allocations; entered in ring 0, also
    // all the head code mapped (its boot pagetable is kept, so it must be
    // RAM). A ring-1 host's own map is its business.
    let image_end = (sym.end - PAGE_OFFSET) as u64;
    let head_map = if boot.cpl == 0 { boot.early_mapped_end.addr().0 } else { 0 };
    let need = (image_end + MIN_FREE).max(head_map);
    if ram_end < need || !boot.memory.is_ram(KERNEL_PHYS_START as u64, image_end) {
        fail!("{}", mm::MmError::TooLittleMemory { have: ram_end, need });
    }
    let layout = Layout::new(paging.mode, ram_end, hv.paging().reserved_top(), image());
    kprintln!(
        "layout: lowmem {} MiB (max_low_pfn {:#x}), highmem {} MiB, fixmap {:#010x}-{:#010x}, pkmap {:#010x}",
        (layout.max_low_pfn.0 as u64) >> 8,
        layout.max_low_pfn.0,
        (layout.highmem_pages as u64 + (boot.memory.ram_above_4g() >> 12)) >> 8,
        layout.fixaddr_start,
        layout.fixaddr_top,
        layout.pkmap_base
    );
    layout
}

/// Builds the kernel's pagetable through `hv`'s MMU ops, restricts what it
/// kept, and checks the live result.
pub fn build(hv: &'static dyn Hypervisor, boot: &BootInfo, paging: Paging, layout: Layout) -> Booted {
    let mmu = hv.mmu();
    let caps = paging.caps;
    // SAFETY: the boot environment mapped every frame below
    // `early_mapped_end` at PAGE_OFFSET (the head code, Xen's initial
    // mapping, the Launcher's map), and that map stays live until
    // `pagetable_setup_done`; the build reads through it only until then.
    let early = unsafe { DirectMap::new(boot.early_mapped_end) };
    // Pages the build allocates must stay reachable afterwards: low memory.
    let limit = boot.early_mapped_end.min(layout.max_low_pfn);
    let mut alloc =
        match BootAlloc::new(&early, &boot.memory, Pfn(KERNEL_PHYS_START >> 12), limit, boot.reserved()) {
            Ok(a) => a,
            Err(e) => fail!("bootmem: {}", e),
        };
    for &(s, e) in alloc.free_ranges() {
        kprintln!("bootmem: early allocations from pfn {:#x}-{:#x} ({} KiB)", s.0, e.0, (e.0 - s.0) * 4);
    }
    perf::phase("layout");
    let before = hv.counters();
    // The kernel's own build: monomorphized for the native MMU ops.
    let result =
        devirt!(mmu, |m| mm::pagetable_init(m, &early, &mut alloc, &layout, caps, &mut perf::mm_phase));
    let pt = match result {
        Ok(pt) => pt,
        Err(e) => fail!("pagetable_init: {}", e),
    };
    let built = hv.counters();
    kprintln!("hypercalls: pagetable_init {}", built.since(&before));
    if boot.cpl == 0 {
        crate::trap::set_df_cr3(arch_i386::cr::Cr3::read().0 as u32);
    }
    let s = pt.stats;
    kprintln!(
        "pagetable: root pfn {:#x}, new pages pgd={} pmd={} pte={}, ptes written {} kept {}, large pages written {} kept {}, pte pages shared {}, {} write calls",
        pt.root.0,
        s.pgd_pages,
        s.pmd_pages,
        s.pte_pages,
        s.ptes_written,
        s.ptes_kept,
        s.large_written,
        s.large_kept,
        s.pte_pages_kept,
        s.write_calls
    );
    // From here on the kernel's own map is live: all of low memory is
    // mapped at PAGE_OFFSET.
    // SAFETY: the self-check below verifies it (and ends the run if not);
    // the build mapped every frame below max_low_pfn.
    let mem = unsafe { DirectMap::new(layout.max_low_pfn) };
    let w = Walker::live(mmu, &mem, paging.mode, mmu.read_cr3());
    if w.root != pt.root {
        fail!(
            "after pagetable_setup_done the live root is pfn {:#x}, not the kernel's {:#x}",
            w.root.0,
            pt.root.0
        );
    }
    // What the log above cost is not mark_rodata_ro's.
    perf::phase("build_log");
    let restricted = mm::protect::mark_rodata_ro(&w, &layout, &caps, &s.kept);
    let protected = hv.counters();
    perf::phase("mark_rodata_ro");
    match restricted {
        Ok(n) => kprintln!("mark_rodata_ro: {} kept entries restricted", n),
        Err(e) => fail!("mark_rodata_ro: {}", e),
    }
    kprintln!("hypercalls: mark_rodata_ro {}", protected.since(&built));

    let report = selfcheck::run(&w, &layout, &caps, hv.paging().pagetable_pages_readonly(), &pt);
    perf::phase("selfcheck");
    // The figures `cargo xtask bench` reads.
    perf::counters("pagetable", &built.since(&before));
    perf::counters("mark_rodata_ro", &protected.since(&built));
    perf::figure("pagetable.pages_allocated", alloc.allocated() as u64);
    perf::figure("pagetable.ptes_written", s.ptes_written as u64);
    perf::figure("pagetable.ptes_kept", s.ptes_kept as u64);
    perf::figure("pagetable.large_written", s.large_written as u64);
    perf::figure("pagetable.large_pages", report.large_pages as u64);
    perf::figure("pagetable.write_calls", s.write_calls as u64);
    perf::figure("pagetable.pte_pages_kept", s.pte_pages_kept as u64);
    perf::figure("pagetable.table_pages", (1 + report.pmd_tables + report.pte_tables) as u64);
    perf::figure("pagetable.min_table_pages", layout.min_table_pages(&caps) as u64);
    perf::figure("lowmem_pages", layout.max_low_pfn.0 as u64);
    perf::bulk();
    perf::calibrate();
    if boot.cmdline.get("bench") == Some("remap") {
        bulk_update(hv, &w, &layout);
    }
    let mut used = [(Pfn(0), Pfn(0)); mm::bootmem::MAX_FREE];
    let nused = alloc.allocated_ranges(&mut used);
    Booted { layout, pt, paging, mem, report, used, nused }
}

/// `bench=remap`: the cost of a bulk update of live entries (every 4 KiB
/// pte of the direct map written again), for the benchmarks.
fn bulk_update(hv: &dyn Hypervisor, w: &Walker, layout: &Layout) {
    let before = hv.counters();
    perf::phase("before_remap");
    match mm::rewrite::rewrite_direct_map(w, layout) {
        Ok(n) => perf::figure("remap.updates", n as u64),
        Err(e) => fail!("bench=remap: {}", e),
    }
    perf::phase("remap");
    perf::counters("remap", &hv.counters().since(&before));
}
