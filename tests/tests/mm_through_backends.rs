//! The seed's build through the real backends' MMU code, on the host: `mm`
//! builds the kernel's pagetable over the pagetable each platform boots a
//! guest on (Xen's complete PAE one, full of machine frames; lguest's
//! Launcher's linear map), through `XenMmu` and `Lguest` with fake
//! hypervisors behind their transports.

use std::collections::BTreeSet;

use arch_i386::layout::PAGE_OFFSET;
use arch_i386::{PagingMode, Pfn};
use backend_lguest::fake::{FakeHost, Pages as Pages32};
use backend_lguest::Lguest;
use backend_xen::fake::{table, Call, FakeXen, Pages as Pages64};
use backend_xen::pagetable::{Machine, XenMmu};
use mm::check::check;
use mm::sim::image;
use mm::walk::Walker;
use mm::{BootAlloc, Caps, Layout};
use paravirt::memmap::{MemoryMap, Region, RegionKind};
use paravirt::Mmu;

fn ram(bytes: u64) -> MemoryMap {
    let mut m = MemoryMap::default();
    m.push(Region { start: 0, len: bytes, kind: RegionKind::Ram }).unwrap();
    m
}

/// The image occupies pfn 0x100-0x200 in `image()`.
const IMAGE: (Pfn, Pfn) = (Pfn(0x100), Pfn(0x200));

#[test]
fn xen_pv_build_over_xens_boot_pagetable() {
    // 32 MiB, machine frames scattered in two runs: a wrong translation
    // anywhere shows.
    const PAGES: u32 = 8192;
    let mfn = |p: u32| if p < 5000 { 0x40000 + p } else { 0x90000 + p };
    let xen = XenMmu::new(FakeXen::new());
    let p2m = table(PAGES, mfn);
    // Xen's boot tables after the image: L3, its slot-3 L2, four L1s
    // mapping the first 8 MiB (the initial mapping) read-write.
    let (l3, l2) = (Pfn(0x200), Pfn(0x201));
    let mem = Pages64::new(PAGES);
    let machine = |p: u32| (mfn(p) as u64) << 12;
    mem.write_u64(l3, 3, machine(l2.0) | 1);
    for t in 0..4 {
        let l1 = Pfn(0x202 + t);
        mem.write_u64(l2, t, machine(l1.0) | 0x67);
        for i in 0..512 {
            mem.write_u64(l1, i, machine(t * 512 + i) | 0x63);
        }
    }
    mem.write_u64(l2, 428, 0xdead_0067); // one of Xen's own slots
    xen.init(Machine { p2m, hv_l2_slot: 428 }, l3);

    let layout = Layout::new(PagingMode::Pae, (PAGES as u64) << 12, 0x0A80_0000, image());
    let caps = Caps { large_pages: false, global_pages: false, nx: true };
    let map = ram((PAGES as u64) << 12);
    let reserved = [IMAGE, (Pfn(0x200), Pfn(0x206))];
    let mut alloc = BootAlloc::new(&mem, &map, Pfn(0x100), Pfn(2048), &reserved).unwrap();
    let pt = mm::pagetable_init(&xen, &mem, &mut alloc, &layout, caps, &mut |_| {}).unwrap();

    // The live table maps every low page to itself, through machine
    // frames, W^X in place.
    let w = Walker::live(&xen, &mem, PagingMode::Pae, xen.read_cr3());
    assert_eq!(w.root, pt.root);
    let report = check(&w, &layout, &caps, false, |_| {});
    // Xen's initial mapping of the image was kept read-write: only
    // mark_rodata_ro fixes that, which this test does not run.
    assert!(
        report.problems().all(|p| matches!(p, mm::check::Problem::Permission { .. })),
        "{:?}",
        report.first
    );
    assert_eq!(report.mapped_pages, layout.max_low_pfn.0);
    let mut pfns = BTreeSet::new();
    w.for_each_mapping(PAGE_OFFSET, layout.direct_map_end() as u64, |m| {
        assert!(pfns.insert(m.pfn.unwrap()));
        assert_eq!(m.raw & 0x000F_FFFF_FFFF_F000, machine(m.pfn.unwrap().0));
    });
    // The build kept Xen's four L1s and wrote nothing into them (they were
    // full); everything it made was written with plain stores and then
    // remapped read-only, exactly those pages, before the pin.
    assert_eq!(pt.stats.pte_pages_kept, 4);
    let calls = xen.hc.calls();
    assert!(!calls.iter().any(|c| matches!(c, Call::MmuUpdate(_))), "no entry of Xen's tables had to change");
    let remapped: BTreeSet<u32> = calls
        .iter()
        .take_while(|c| matches!(c, Call::Multicall(_)))
        .flat_map(|c| match c {
            Call::Multicall(mc) => mc.iter().map(|e| (e.args[0] - PAGE_OFFSET) >> 12).collect::<Vec<_>>(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(remapped.len() as u32, pt.stats.fresh_pages);
    assert!(remapped.contains(&pt.root.0));
    assert!(matches!(&calls[remapped.len().div_ceil(64)], Call::Mmuext(ops) if ops.len() == 3));
}

#[test]
fn lguest_build_over_the_launchers_linear_map() {
    const PAGES: u32 = 4096; // 16 MiB
    let (pgdir, first_pte) = (PAGES - 1, PAGES - 5);
    let mem = Pages32::new(PAGES);
    for p in 0..PAGES {
        mem.write(first_pte + p / 1024, p % 1024, (p << 12) | 7);
    }
    for t in 0..4 {
        mem.write(pgdir, t, ((first_pte + t) << 12) | 7);
        mem.write(pgdir, 768 + t, ((first_pte + t) << 12) | 7);
    }
    let lg: Lguest<FakeHost> = Lguest::faked(Pfn(pgdir));
    let layout = Layout::new(PagingMode::TwoLevel, (PAGES as u64) << 12, 4 << 20, image());
    let caps = Caps { large_pages: false, global_pages: false, nx: false };
    let map = ram((PAGES as u64) << 12);
    let reserved = [IMAGE, (Pfn(first_pte), Pfn(PAGES))];
    let mut alloc = BootAlloc::new(&mem, &map, Pfn(0x100), Pfn(first_pte), &reserved).unwrap();
    let pt = mm::pagetable_init(&lg, &mem, &mut alloc, &layout, caps, &mut |_| {}).unwrap();
    let w = Walker::live(&lg, &mem, PagingMode::TwoLevel, lg.read_cr3());
    assert_eq!(w.root, pt.root, "NEW_PGTABLE made it live");
    let changed = mm::protect::mark_rodata_ro(&w, &layout, &caps, &pt.stats.kept).unwrap();
    let report = check(&w, &layout, &caps, false, |_| {});
    assert!(report.ok(), "{:?}", report.first);
    // The Launcher's pte pages were adopted (shared); the only writes the
    // host heard of were mark_rodata_ro's, one SET_PTE each, plus one
    // FLUSH_TLB for the USER bits cleared behind its back, and the switch.
    assert_eq!(pt.stats.pte_pages_kept, 4);
    let done = lg.host().done();
    let count = |call: u32| done.iter().filter(|c| c.0 == call).count();
    assert_eq!(count(backend_lguest::abi::nr::SET_PTE) as u32, changed);
    assert_eq!(count(backend_lguest::abi::nr::SET_PMD), 0, "fresh tables are the guest's own");
    assert_eq!(count(backend_lguest::abi::nr::FLUSH_TLB), 1);
    assert!(done.contains(&(backend_lguest::abi::nr::NEW_PGTABLE, pt.root.0 << 12, 0, 0, false)));
}
