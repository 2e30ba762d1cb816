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
use backend_xen::fake::{table, Call, FakeXen, Pages as Pages64, Sub};
use backend_xen::pagetable::{Machine, XenMmu};
use backend_xen::strategy::Strategy;
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

/// What a Xen PV build over Xen's boot pagetable left: the hypercalls of
/// the build, every mapping of the live kernel half after
/// `mark_rodata_ro` (va, raw entry), and the build's figures.
struct XenBuild {
    calls: Vec<Call>,
    map: Vec<(u32, u64)>,
    pt: mm::Pagetable,
}

/// 32 MiB, machine frames scattered in two runs (a wrong translation
/// anywhere shows), the kernel's pagetable built through `XenMmu` with
/// `strategy`, over a fake Xen that carries out what it is asked in
/// memory; the result checked in full, pagetable pages read-only
/// included.
fn xen_pv_build(strategy: Strategy) -> XenBuild {
    const PAGES: u32 = 8192;
    let mfn = |p: u32| if p < 5000 { 0x40000 + p } else { 0x90000 + p };
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
            // Xen's own tables are mapped read-only.
            let rw = if (0x200..0x206).contains(&(t * 512 + i)) { 0 } else { 2 };
            mem.write_u64(l1, i, machine(t * 512 + i) | 0x61 | rw);
        }
    }
    mem.write_u64(l2, 428, 0xdead_0067); // one of Xen's own slots
    let xen = XenMmu::new(FakeXen::with_memory(&mem, p2m, l3));
    xen.init(Machine { p2m, hv_l2_slot: 428 }, l3);
    xen.set_strategy(strategy);

    let layout = Layout::new(PagingMode::Pae, (PAGES as u64) << 12, 0x0A80_0000, image());
    let caps = Caps { large_pages: false, global_pages: false, nx: true };
    let map = ram((PAGES as u64) << 12);
    let reserved = [IMAGE, (Pfn(0x200), Pfn(0x206))];
    let mut alloc = BootAlloc::new(&mem, &map, Pfn(0x100), Pfn(2048), &reserved).unwrap();
    let pt = mm::pagetable_init(&xen, &mem, &mut alloc, &layout, caps, &mut |_| {}).unwrap();
    let calls = xen.hc.calls();
    assert_eq!(xen.strategy(), Strategy::Pvops, "the strategy was the build's only");

    // The live table maps every low page to itself, through machine
    // frames, W^X in place once mark_rodata_ro restricted what the build
    // kept of Xen's initial mapping, every pagetable page read-only.
    let w = Walker::live(&xen, &mem, PagingMode::Pae, xen.read_cr3());
    assert_eq!(w.root, pt.root);
    mm::protect::mark_rodata_ro(&w, &layout, &caps, &pt.stats.kept).unwrap();
    let report = check(&w, &layout, &caps, true, |_| {});
    assert!(report.ok(), "{strategy:?}: {:?}", report.first);
    assert_eq!(report.mapped_pages, layout.max_low_pfn.0);
    let mut pfns = BTreeSet::new();
    let mut live = Vec::new();
    w.for_each_mapping(PAGE_OFFSET, layout.direct_map_end() as u64, |m| {
        assert!(pfns.insert(m.pfn.unwrap()));
        assert_eq!(m.raw & 0x000F_FFFF_FFFF_F000, machine(m.pfn.unwrap().0));
        live.push((m.va, m.raw));
    });
    // Xen's L3 and slot-3 L2 are plain memory again.
    for old in [l3, l2] {
        assert_ne!(
            mem.read_u64(Pfn(0x202 + old.0 / 512), old.0 % 512) & 2,
            0,
            "{strategy:?}: {old:?} writable"
        );
    }
    assert_eq!(pt.stats.pte_pages_kept, 4);
    XenBuild { calls, map: live, pt }
}

#[test]
fn xen_pv_build_over_xens_boot_pagetable_is_one_trap() {
    let b = xen_pv_build(Strategy::Pvops);
    // The build kept Xen's four L1s and wrote nothing into them (they were
    // full); everything it made was written with plain stores, then one
    // multicall made exactly those pages read-only, pinned, switched and
    // released Xen's tables.
    assert_eq!(b.calls.len(), 1, "{:?}", b.calls);
    let subs = b.calls[0].subs();
    let [Sub::MmuUpdate(remaps), Sub::Mmuext(ops), Sub::MmuUpdate(release)] = &subs[..] else {
        panic!("{subs:?}")
    };
    assert_eq!(remaps.len() as u32, b.pt.stats.fresh_pages);
    assert_eq!((ops.len(), release.len()), (3, 2));
}

#[test]
fn the_anchors_strategies_build_the_same_map_in_their_own_hypercalls() {
    let ours = xen_pv_build(Strategy::Pvops);
    let fresh = ours.pt.stats.fresh_pages as usize;
    let writes = ours.pt.stats.ptes_written as usize;

    // Mini-OS: each table page read-only at once (one update_va_mapping),
    // every entry through Xen at once: the hooks one by one, the ptes 512
    // at a time; then the pin, switch and unpin, and the release.
    let minios = xen_pv_build(Strategy::MiniOs);
    assert_eq!(minios.map, ours.map, "the same map");
    let uvms = minios.calls.iter().filter(|c| matches!(c, Call::UpdateVaMapping { .. })).count();
    assert_eq!(uvms, fresh, "one remap per table page");
    let sizes: Vec<usize> = minios
        .calls
        .iter()
        .filter_map(|c| if let Call::MmuUpdate(r) = c { Some(r.len()) } else { None })
        .collect();
    assert!(sizes.iter().all(|&n| n <= 512));
    let hooks = sizes.iter().filter(|&&n| n == 1).count();
    assert!(hooks >= fresh - 1, "a hook per table page: {hooks} for {fresh}");
    assert_eq!(sizes.iter().sum::<usize>() - hooks, writes);
    assert!(minios.calls.len() >= 2 * fresh + writes / 512, "{} hypercalls", minios.calls.len());

    // Linux: the same remaps and entries, queued in multicalls of at most
    // 32 calls, an mmu_update carrying at most 31 entries.
    let linux = xen_pv_build(Strategy::Linux);
    assert_eq!(linux.map, ours.map, "the same map");
    let subs: Vec<Sub> = linux.calls.iter().flat_map(|c| c.subs()).collect();
    assert!(linux.calls.iter().all(|c| matches!(c, Call::Multicall(s) if s.len() <= 32)));
    let uvms = subs.iter().filter(|s| matches!(s, Sub::UpdateVaMapping { .. })).count();
    assert_eq!(uvms, fresh + 2, "one per table page, and Xen's two released");
    let entries: Vec<usize> =
        subs.iter().filter_map(|s| if let Sub::MmuUpdate(r) = s { Some(r.len()) } else { None }).collect();
    assert!(entries.iter().all(|&n| n <= 31));
    assert!(linux.calls.len() >= writes / 31, "{} hypercalls", linux.calls.len());
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
