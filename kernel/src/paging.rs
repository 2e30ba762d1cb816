//! Choosing how to page, then building and checking the pagetable.

use arch_i386::layout::{KERNEL_PHYS_START, PAGE_OFFSET};
use arch_i386::{PagingMode, Pfn, VirtAddr};
use mm::walk::Walker;
use mm::{BootAlloc, Caps, KernelImage, Layout};
use paravirt::{BootInfo, Hypervisor};

use crate::mem::DirectMap;
use crate::{fail, head, kprintln, perf, result, selfcheck};

/// Room the kernel needs beyond its image: pagetable pages and the like.
const MIN_FREE: u64 = 512 << 10;

pub fn run(hv: &'static dyn Hypervisor, boot: &BootInfo) -> ! {
    let cpu = &boot.cpu;
    if !cpu.has_cpuid {
        crate::error!("unsupported CPU: no CPUID instruction (a 386 or early 486); pvops needs CPUID to probe paging features");
    }
    let modes = hv.paging_modes(cpu);
    let mode = match boot.cmdline.get("paging") {
        None => match modes.first() {
            Some(m) => *m,
            None => crate::error!("backend {} supports no paging mode on this CPU", hv.name()),
        },
        Some(want) => {
            let m = match want {
                "2level" => PagingMode::TwoLevel,
                "pae" => PagingMode::Pae,
                other => fail!("paging={}: unknown mode (use 2level or pae)", other),
            };
            if !modes.contains(&m) {
                fail!(
                    "paging={}: not available with backend {} on this CPU (pae={})",
                    want,
                    hv.name(),
                    cpu.pae as u8
                );
            }
            m
        }
    };
    let caps = Caps {
        large_pages: hv.large_pages(cpu) && !boot.cmdline.has("nolargepages"),
        global_pages: hv.global_pages(cpu),
        nx: mode == PagingMode::Pae && cpu.nx,
    };
    kprintln!(
        "paging: {} nx={} large={} global={}",
        mode.name(),
        caps.nx as u8,
        caps.large_pages as u8,
        caps.global_pages as u8
    );

    let sym = head::symbols();
    let image = KernelImage {
        text: VirtAddr(sym.text),
        text_end: VirtAddr(sym.etext),
        rodata: VirtAddr(sym.rodata),
        rodata_end: VirtAddr(sym.erodata),
    };
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
    let layout = Layout::new(mode, ram_end, hv.reserved_top(), image);
    kprintln!(
        "layout: lowmem {} MiB (max_low_pfn {:#x}), highmem {} MiB, fixmap {:#010x}-{:#010x}, pkmap {:#010x}",
        (layout.max_low_pfn.0 as u64) >> 8,
        layout.max_low_pfn.0,
        (layout.highmem_pages as u64 + (boot.memory.ram_above_4g() >> 12)) >> 8,
        layout.fixaddr_start,
        layout.fixaddr_top,
        layout.pkmap_base
    );

    let mem = DirectMap;
    let limit = boot.early_mapped_end.min(layout.max_low_pfn);
    let mut alloc = BootAlloc::new(&mem, &boot.memory, Pfn(KERNEL_PHYS_START >> 12), limit, boot.reserved());
    for &(s, e) in alloc.free_ranges() {
        kprintln!("bootmem: early allocations from pfn {:#x}-{:#x} ({} KiB)", s.0, e.0, (e.0 - s.0) * 4);
    }
    perf::phase("layout");
    let before = hv.counters();
    let pt = match mm::pagetable_init(hv, &mem, &mut alloc, &layout, caps, &mut perf::mm_phase) {
        Ok(pt) => pt,
        Err(e) => fail!("pagetable_init: {}", e),
    };
    let built = hv.counters();
    kprintln!("hypercalls: pagetable_init {}", built.since(&before));
    if boot.cpl == 0 {
        crate::trap::set_df_cr3(arch_i386::cr::read_cr3());
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
    let w = Walker { hv, mem: &mem, mode, root: hv.read_cr3() };
    if w.root != pt.root {
        fail!(
            "after pagetable_setup_done the live root is pfn {:#x}, not the kernel's {:#x}",
            w.root.0,
            pt.root.0
        );
    }
    match mm::protect::mark_rodata_ro(&w, &layout, &caps) {
        Ok(n) => kprintln!("mark_rodata_ro: {} kept entries restricted", n),
        Err(e) => fail!("mark_rodata_ro: {}", e),
    }
    let protected = hv.counters();
    kprintln!("hypercalls: mark_rodata_ro {}", protected.since(&built));
    perf::phase("mark_rodata_ro");

    let report = selfcheck::run(&w, &layout, &caps, hv.pagetable_pages_readonly());
    perf::phase("selfcheck");
    // The figures `cargo xtask bench` reads.
    perf::counters("pagetable", &built.since(&before));
    perf::counters("mark_rodata_ro", &protected.since(&built));
    kprintln!("perf: pagetable.pages_allocated {}", alloc.allocated());
    kprintln!("perf: pagetable.ptes_written {}", s.ptes_written);
    kprintln!("perf: pagetable.large_written {}", s.large_written);
    kprintln!("perf: pagetable.large_pages {}", report.large_pages);
    kprintln!("perf: pagetable.write_calls {}", s.write_calls);
    kprintln!("perf: pagetable.table_pages {}", 1 + report.pmd_tables + report.pte_tables);
    kprintln!("perf: pagetable.min_table_pages {}", layout.min_table_pages(&caps));
    kprintln!("perf: lowmem_pages {}", layout.max_low_pfn.0);
    perf::bulk();
    perf::calibrate();
    if boot.cmdline.get("bench") == Some("remap") {
        bulk_update(hv, &w, &layout);
    }
    if report.ok() {
        result::success()
    }
    fail!("self-check found problems in the live pagetable")
}

/// `bench=remap`: the cost of a bulk update of live entries (every 4 KiB
/// pte of the direct map written again), for the benchmarks.
fn bulk_update(hv: &dyn Hypervisor, w: &Walker, layout: &Layout) {
    let before = hv.counters();
    perf::phase("before_remap");
    match mm::rewrite::rewrite_direct_map(w, layout) {
        Ok(n) => kprintln!("perf: remap.updates {}", n),
        Err(e) => fail!("bench=remap: {}", e),
    }
    perf::phase("remap");
    perf::counters("remap", &hv.counters().since(&before));
}
