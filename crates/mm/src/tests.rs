//! Host tests of the pagetable build in simulated physical memory.

extern crate std;

use std::collections::HashMap;
use std::vec::Vec;

use arch_i386::layout::PAGE_OFFSET;
use arch_i386::{Level, PagingMode, Pfn, PteFlags};
use paravirt::memmap::{MemoryMap, Region, RegionKind};
use paravirt::{PageAlloc, Pinning};

use crate::check::check;
use crate::layout::{Layout, Section};
use crate::pagetable::prot;
use crate::protect::mark_rodata_ro;
use crate::ptdump::Kept;
use crate::sim::{Event, Recorder, SimMem};
use crate::walk::Walker;
use crate::{pagetable_init, BootAlloc, Caps, MmError};

/// xorshift64*: deterministic "random" cases without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

use crate::sim::image;

const IMAGE_PFNS: (Pfn, Pfn) = (Pfn(0x100), Pfn(0x200));

fn ram(bytes: u64) -> MemoryMap {
    let mut m = MemoryMap::default();
    m.push(Region { start: 0, len: 0x9_F000, kind: RegionKind::Ram }).unwrap();
    m.push(Region { start: 0x10_0000, len: bytes - 0x10_0000, kind: RegionKind::Ram }).unwrap();
    m
}

struct Case {
    mode: PagingMode,
    caps: Caps,
    mem_bytes: u64,
}

fn all_cases(mem_bytes: u64) -> Vec<Case> {
    let mut v = Vec::new();
    for mode in [PagingMode::TwoLevel, PagingMode::Pae] {
        for large_pages in [false, true] {
            for global_pages in [false, true] {
                let nx = mode == PagingMode::Pae && global_pages; // vary it too
                v.push(Case { mode, caps: Caps { large_pages, global_pages, nx }, mem_bytes });
            }
        }
    }
    v
}

/// Builds with `rec` on `sim`, returns (root, layout, stats).
fn build(
    sim: &SimMem,
    rec: &Recorder,
    c: &Case,
    reserved: &[(Pfn, Pfn)],
) -> Result<(crate::Pagetable, Layout), MmError> {
    let map = ram(c.mem_bytes);
    let layout = Layout::new(c.mode, map.ram_end_below_4g(), 0, image());
    let mut res = std::vec![IMAGE_PFNS];
    res.extend_from_slice(reserved);
    let mut alloc = BootAlloc::new(sim, &map, Pfn(0x100), Pfn(sim.pages() as u32), &res).unwrap();
    let pt = pagetable_init(rec, sim, &mut alloc, &layout, c.caps, &mut |_| {})?;
    Ok((pt, layout))
}

/// A kernel pagetable over 16 MiB of `sim`, for tests of what runs on it.
pub fn built(sim: &SimMem, rec: &Recorder, mode: PagingMode) -> (crate::Pagetable, Layout) {
    let c = Case {
        mode,
        caps: Caps { large_pages: false, global_pages: false, nx: mode == PagingMode::Pae },
        mem_bytes: 16 << 20,
    };
    build(sim, rec, &c, &[]).unwrap()
}

#[test]
fn fresh_build_maps_every_low_page_once_with_the_right_permissions() {
    for c in all_cases(24 << 20) {
        let sim = SimMem::new(6144);
        let rec = Recorder::new(None);
        let (pt, layout) = build(&sim, &rec, &c, &[]).unwrap();
        let w = Walker::live(&rec, &sim, c.mode, pt.root);
        let report = check(&w, &layout, &c.caps, false, |_| {});
        let name = (c.mode.name(), c.caps);
        assert!(report.ok(), "{name:?}: {:?}", report.first);
        assert_eq!(report.mapped_pages, layout.max_low_pfn.0, "{name:?}");
        assert_eq!(report.user_pmds, 0);
        // Large pages are used exactly where allowed: everywhere but the
        // pmd holding the kernel image.
        let per_pmd = c.mode.ptrs_per_pte();
        let pmds = layout.max_low_pfn.0 / per_pmd;
        if c.caps.large_pages {
            assert_eq!(pt.stats.large_written, pmds - 1, "{name:?}");
        } else {
            assert_eq!(pt.stats.large_written, 0);
            assert_eq!(pt.stats.ptes_written, layout.max_low_pfn.0);
        }
        // And independently of `check`: the permissions of a few pages.
        for (va, section) in
            [(0xC010_0000u32, Section::Text), (0xC014_0000, Section::Rodata), (0xC01F_F000, Section::Data)]
        {
            let e = w.pte(va).unwrap().read();
            assert_eq!(e & !c.mode.addr_mask(), prot(&c.caps, section).bits(), "{name:?} {va:#x}");
        }
    }
}

#[test]
fn hooks_come_in_the_seed_order() {
    for c in all_cases(16 << 20) {
        let sim = SimMem::new(4096);
        let rec = Recorder::new(None);
        let (pt, _) = build(&sim, &rec, &c, &[]).unwrap();
        let ev = rec.events.borrow();
        // The root is announced, then setup_start; setup_done comes last,
        // and receives every page the build allocated.
        assert_eq!(ev[0], Event::AllocPd(pt.root, Pinning::Unpinned));
        assert_eq!(ev[1], Event::SetupStart(pt.root));
        assert_eq!(*ev.last().unwrap(), Event::SetupDone(pt.root, pt.stats.table_pages()));
        assert_eq!(ev[2], Event::EnterLazy);
        assert_eq!(ev[ev.len() - 2], Event::LeaveLazy);
        // Every page linked as a table was announced first, at its level.
        let mut announced: HashMap<Pfn, Level> = HashMap::new();
        for e in ev.iter() {
            match *e {
                Event::AllocPt(p, pinning) => {
                    assert_eq!(pinning, Pinning::Unpinned, "the build's pages are not pinned");
                    announced.insert(p, Level::Pte);
                }
                Event::AllocPd(p, _) => {
                    announced.insert(p, Level::Pmd);
                }
                Event::Set(_, table, ..) | Event::SetRange(table, ..) => {
                    // A fresh build writes only into its own pages, and
                    // says so.
                    let pinning = match *e {
                        Event::Set(.., p) | Event::SetRange(.., p) => p,
                        _ => unreachable!(),
                    };
                    assert!(announced.contains_key(&table), "write into unannounced page {table:?}");
                    assert_eq!(pinning, Pinning::Unpinned);
                }
                _ => {}
            }
        }
        for e in ev.iter() {
            match *e {
                Event::Set(Level::Pgd, _, _, v, _) => {
                    let p = Pfn(((v & c.mode.addr_mask()) >> 12) as u32);
                    assert_eq!(announced.get(&p), Some(&Level::Pmd), "pmd page {p:?} linked before alloc_pd");
                }
                Event::Set(Level::Pmd, _, _, v, _) if v & PteFlags::PSE.bits() == 0 => {
                    let p = Pfn(((v & c.mode.addr_mask()) >> 12) as u32);
                    assert_eq!(announced.get(&p), Some(&Level::Pte), "pte page {p:?} linked before alloc_pt");
                }
                Event::SetRange(table, ..) => {
                    assert_eq!(announced.get(&table), Some(&Level::Pte), "ptes written into a non-pte page");
                }
                _ => {}
            }
        }
        assert_eq!(announced.len() as u32, pt.stats.table_pages());
    }
}

/// A pre-existing pagetable, as a hypervisor or the head code might leave
/// it: some pte pages (partly filled), some large pages, some entries
/// mapping frames other than the direct map would.
struct Prepopulated {
    root: Pfn,
    /// (pte page, index) -> raw value of every present pte
    ptes: Vec<(Pfn, u32, u64)>,
    /// pgd/pmd entries present before, by va -> raw value
    pmds: Vec<(u32, u64)>,
    pages: Vec<Pfn>,
}

fn prepopulate(
    sim: &SimMem,
    rng: &mut Rng,
    mode: PagingMode,
    low_pfns: u32,
    next_free: &mut u32,
) -> Prepopulated {
    let mut take = || {
        let p = Pfn(*next_free);
        *next_free += 1;
        p
    };
    let root = take();
    let mut pages = std::vec![root];
    let rec = Recorder::new(None);
    let w = Walker::live(&rec, sim, mode, root);
    if mode == PagingMode::Pae {
        let pmd = take();
        pages.push(pmd);
        paravirt::native::write_entry(&w.pgd(PAGE_OFFSET), pmd.addr().0 | 1);
    }
    let mut ptes = Vec::new();
    let mut pmds = Vec::new();
    let per = mode.ptrs_per_pte();
    let mut pfn = 0;
    while pfn < low_pfns {
        let va = PAGE_OFFSET + (pfn << 12);
        let pmd = w.pmd(va).unwrap();
        match rng.below(4) {
            0 | 1 => {
                let t = take();
                pages.push(t);
                paravirt::native::write_entry(&pmd, t.addr().0 | 0x63);
                pmds.push((va, pmd.read()));
                let e0 = w.entry(t, Level::Pte, 0, va);
                for i in 0..per {
                    if pfn + i < low_pfns && rng.chance(30) {
                        // Mostly the right frame; sometimes a foreign one,
                        // which must be kept all the same.
                        let target = if rng.chance(80) { pfn + i } else { rng.below(low_pfns as u64) as u32 };
                        let v = ((target as u64) << 12) | 0x63;
                        paravirt::native::write_entry(&e0.add(i), v);
                        ptes.push((t, i, v));
                    }
                }
            }
            2 if pfn >= 0x400 && pfn + per <= low_pfns => {
                // A large page (outside the image's pmd).
                let v = ((pfn as u64) << 12) | 0xE3;
                paravirt::native::write_entry(&pmd, v);
                pmds.push((va, v));
            }
            _ => {}
        }
        pfn += per;
    }
    Prepopulated { root, ptes, pmds, pages }
}

#[test]
fn prepopulated_mappings_survive_property() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for round in 0..96 {
        let mode = if round % 2 == 0 { PagingMode::TwoLevel } else { PagingMode::Pae };
        let caps = Caps {
            large_pages: rng.chance(50),
            global_pages: rng.chance(50),
            nx: mode == PagingMode::Pae && rng.chance(50),
        };
        let mem_bytes = (8 + rng.below(24)) << 20;
        let c = Case { mode, caps, mem_bytes };
        let sim = SimMem::new((mem_bytes >> 12) as usize);
        // Pre-existing tables live right after the image.
        let mut next = IMAGE_PFNS.1 .0;
        let low = (mem_bytes >> 12) as u32;
        let pre = prepopulate(&sim, &mut rng, mode, low, &mut next);
        let rec = Recorder::new(Some(pre.root));
        let (pt, layout) = build(&sim, &rec, &c, &[(IMAGE_PFNS.1, Pfn(next))]).unwrap();
        let w = Walker::live(&rec, &sim, mode, pt.root);
        let ctx = (round, mode.name(), caps, mem_bytes >> 20);

        // Every pre-existing entry is still there, bit for bit, and its
        // pmd still points at the same pte page (shared, not copied).
        for &(t, i, v) in &pre.ptes {
            let e = w.entry(t, Level::Pte, i, 0);
            assert_eq!(e.read(), v, "{ctx:?}: pte {t:?}[{i}] changed");
        }
        for &(va, v) in &pre.pmds {
            assert_eq!(w.pmd(va).unwrap().read(), v, "{ctx:?}: pmd for {va:#x} changed");
        }
        // No pre-existing table page was handed out again.
        let ev = rec.events.borrow();
        for e in ev.iter() {
            if let Event::AllocPt(p, _) | Event::AllocPd(p, _) = e {
                assert!(!pre.pages.contains(p) || *p == pt.root, "{ctx:?}: {p:?} reused");
            }
            // Writes into the pre-existing (adopted) tables are writes
            // into pagetables the platform owns: pinned.
            if let Event::Set(_, t, _, _, p) | Event::SetRange(t, _, _, _, p) = *e {
                let adopted = pre.pages.contains(&t) && t != pre.root;
                assert_eq!(p == Pinning::Pinned, adopted, "{ctx:?}: write into {t:?} said {p:?}");
            }
        }
        // Everything not pre-existing is the direct map: every low page is
        // mapped, to itself unless a foreign pre-existing entry says
        // otherwise.
        let prepopulated: std::collections::HashSet<u32> = pre
            .ptes
            .iter()
            .map(|&(t, i, _)| {
                let va =
                    pre.pmds.iter().find(|(_, pv)| (pv & mode.addr_mask()) >> 12 == t.0 as u64).unwrap().0;
                va + i * 4096
            })
            .collect();
        let mut mapped = 0;
        w.for_each_mapping(PAGE_OFFSET, layout.direct_map_end() as u64, |m| {
            mapped += m.size / 4096;
            if m.size == 4096 && !prepopulated.contains(&m.va) {
                assert_eq!(m.pfn.unwrap().0, (m.va - PAGE_OFFSET) >> 12, "{ctx:?}");
            }
        });
        assert_eq!(mapped, layout.max_low_pfn.0, "{ctx:?}: not every low page is mapped once");
    }
}

#[test]
fn adopted_boot_pagetable_is_fixed_up_by_mark_rodata_ro() {
    // The head code's boot pagetable: 2-level, [0, 3 MiB) mapped read-write
    // and executable, kernel half only as far as we care.
    for nx in [false, true] {
        let mode = if nx { PagingMode::Pae } else { PagingMode::TwoLevel };
        let sim = SimMem::new(8192);
        let mut next = IMAGE_PFNS.1 .0;
        let root = Pfn(next);
        let rec0 = Recorder::new(None);
        let w0 = Walker::live(&rec0, &sim, mode, root);
        next += 1;
        if mode == PagingMode::Pae {
            paravirt::native::write_entry(&w0.pgd(PAGE_OFFSET), ((next as u64) << 12) | 1);
            next += 1;
        }
        let per = mode.ptrs_per_pte();
        for p in (0..768).step_by(per as usize) {
            let t = Pfn(next);
            next += 1;
            let va = PAGE_OFFSET + (p << 12);
            paravirt::native::write_entry(&w0.pmd(va).unwrap(), t.addr().0 | 0x63);
            for i in 0..per.min(768 - p) {
                paravirt::native::write_entry(
                    &w0.entry(t, Level::Pte, i, va),
                    (((p + i) as u64) << 12) | 0x63,
                );
            }
        }
        let caps = Caps { large_pages: true, global_pages: false, nx };
        let c = Case { mode, caps, mem_bytes: 32 << 20 };
        let rec = Recorder::new(Some(root));
        let (pt, layout) = build(&sim, &rec, &c, &[(IMAGE_PFNS.1, Pfn(next))]).unwrap();
        assert!(pt.stats.ptes_kept >= 768 - 256);
        let w = Walker::live(&rec, &sim, mode, pt.root);
        // The ptdump's account: the kept entries, one run ending where the
        // boot mapping ended; the boot pte pages kept, the rest built.
        let kept: u32 = pt.stats.kept.runs().iter().map(|(s, e)| e.0 - s.0).sum();
        assert_eq!(kept, pt.stats.ptes_kept);
        assert_eq!(pt.stats.kept.runs().len(), 1, "{:?}", pt.stats.kept);
        assert_eq!(pt.stats.kept.runs()[0].1, Pfn(768));
        let mut tables = Vec::new();
        crate::ptdump::table_runs(&w, &layout, &pt.fresh, |r| tables.push(*r));
        // The boot tables below its root (a PAE pmd page, the pte pages)
        // are adopted, never copied.
        let boot_tables = (IMAGE_PFNS.1 .0 + 1, next);
        for t in &tables {
            let boot = t.first.0 >= boot_tables.0 && t.end.0 <= boot_tables.1;
            assert_eq!(t.built, !boot, "{t:?}");
        }
        assert!(tables.iter().any(|t| t.level == Level::Pte && !t.built));
        assert!(tables.iter().any(|t| t.level == Level::Pgd && t.built));
        let before = check(&w, &layout, &caps, false, |_| {});
        assert!(!before.ok(), "the boot mappings should start out writable text");
        // Told of nothing kept, the pass restricts the image alone: with NX
        // the kept data stays executable, and the self-check (which walks
        // every entry, not the record) says so.
        let image_only = mark_rodata_ro(&w, &layout, &caps, &Kept::default()).unwrap();
        assert!(image_only > 0);
        let partial = check(&w, &layout, &caps, false, |_| {});
        assert_eq!(partial.ok(), !nx, "{:?}", partial.first);
        if nx {
            let image = layout.image;
            assert!(partial.problems().all(|p| matches!(p,
                crate::check::Problem::Permission { va, .. } if !image.overlaps_protected(*va, 4096))));
        }
        rec.events.borrow_mut().clear();
        let changed = mark_rodata_ro(&w, &layout, &caps, &pt.stats.kept).unwrap();
        assert_eq!(changed > 0, nx);
        let after = check(&w, &layout, &caps, false, |_| {});
        assert!(after.ok(), "{:?}", after.first);
        if nx {
            assert_eq!(*rec.events.borrow().last().unwrap(), Event::Flush);
        }
        // Every entry written is one the build kept.
        let kept = pt.stats.kept.runs();
        for e in rec.events.borrow().iter() {
            if let Event::Set(Level::Pte, t, i, v, _) = *e {
                let pfn = Pfn(((v & mode.addr_mask()) >> 12) as u32);
                assert!(kept.iter().any(|&(s, e)| s <= pfn && pfn < e), "{t:?}[{i}] = {v:#x}");
            }
        }
    }
}

#[test]
fn mark_rodata_ro_looks_at_the_image_and_what_was_kept() {
    let c = Case {
        mode: PagingMode::Pae,
        caps: Caps { large_pages: false, global_pages: false, nx: true },
        mem_bytes: 64 << 20,
    };
    let map = ram(c.mem_bytes);
    let layout = Layout::new(c.mode, map.ram_end_below_4g(), 0, image());
    let img = layout.image;
    let text = Pfn((img.text.0 - PAGE_OFFSET) >> 12);
    let rodata_end = Pfn((img.rodata_end.0 - PAGE_OFFSET).div_ceil(4096));
    let mut kept = Kept::default();
    // Overlapping the image, then beyond it, then a run past low memory.
    kept.add(Pfn(0), text.0 + 2);
    kept.add(Pfn(0x3000), 0x10);
    kept.add(Pfn(layout.max_low_pfn.0 - 1), 8);
    let (runs, n) = crate::protect::rodata_ranges(&layout, &c.caps, &kept);
    assert_eq!(
        &runs[..n],
        &[
            (Pfn(0), rodata_end),
            (Pfn(0x3000), Pfn(0x3010)),
            (Pfn(layout.max_low_pfn.0 - 1), layout.max_low_pfn)
        ]
    );
    // Without NX only the image can need a change.
    let no_nx = Caps { nx: false, ..c.caps };
    let (runs, n) = crate::protect::rodata_ranges(&layout, &no_nx, &kept);
    assert_eq!(&runs[..n], &[(text, rodata_end)]);
    // A record that overflowed: everything.
    for i in 0..12 {
        kept.add(Pfn(0x5000 + 2 * i), 1);
    }
    assert!(kept.unlisted > 0);
    let (runs, n) = crate::protect::rodata_ranges(&layout, &no_nx, &kept);
    assert_eq!(&runs[..n], &[(Pfn(0), layout.max_low_pfn)]);
}

#[test]
fn running_out_of_memory_is_an_error() {
    let sim = SimMem::new(4096);
    let rec = Recorder::new(None);
    let c = Case {
        mode: PagingMode::Pae,
        caps: Caps { large_pages: false, global_pages: false, nx: false },
        mem_bytes: 16 << 20,
    };
    let map = ram(c.mem_bytes);
    let layout = Layout::new(c.mode, map.ram_end_below_4g(), 0, image());
    // Only 4 free frames: not enough for 8 pte pages.
    let mut alloc = BootAlloc::new(&sim, &map, Pfn(0x200), Pfn(0x204), &[]).unwrap();
    let r = pagetable_init(&rec, &sim, &mut alloc, &layout, c.caps, &mut |_| {});
    assert!(matches!(r, Err(MmError::OutOfMemory { what: "pte", allocated: 4 })), "{r:?}");
    // The lazy section was closed even on the error path, and the build
    // never reached setup_done.
    assert_eq!(*rec.events.borrow().last().unwrap(), Event::LeaveLazy);
    assert!(!rec.events.borrow().iter().any(|e| matches!(e, Event::SetupDone(..))));
    assert_eq!(alloc.alloc_page(), None, "the build used every frame it was given");
}

#[test]
fn check_catches_what_it_should() {
    let c = Case {
        mode: PagingMode::TwoLevel,
        caps: Caps { large_pages: false, global_pages: false, nx: false },
        mem_bytes: 16 << 20,
    };
    let sim = SimMem::new(4096);
    let rec = Recorder::new(None);
    let (pt, layout) = build(&sim, &rec, &c, &[]).unwrap();
    let w = Walker::live(&rec, &sim, c.mode, pt.root);
    // Writable text, a hole, a wrong frame, and a stray mapping in the
    // fixmap (which must be empty after the build).
    paravirt::native::write_entry(&w.pte(0xC010_0000).unwrap(), 0x100_063);
    paravirt::native::write_entry(&w.pte(0xC030_0000).unwrap(), 0);
    paravirt::native::write_entry(&w.pte(0xC030_1000).unwrap(), 0x999_063);
    let stray = layout.fixaddr_start;
    paravirt::native::write_entry(&w.pte(stray).unwrap(), 0x123_063);
    let r = check(&w, &layout, &c.caps, false, |_| {});
    let found: Vec<_> = r.problems().copied().collect();
    assert!(
        found.iter().any(|p| matches!(p, crate::check::Problem::Permission { va: 0xC010_0000, .. })),
        "{found:?}"
    );
    assert!(
        found.iter().any(|p| matches!(p, crate::check::Problem::Missing { va: 0xC030_0000 })),
        "{found:?}"
    );
    assert!(
        found.iter().any(|p| matches!(p, crate::check::Problem::WrongFrame { va: 0xC030_1000, .. })),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|p| matches!(p, crate::check::Problem::Stray { va, pfn: Pfn(0x123) } if *va == stray)),
        "{found:?}"
    );
    assert_eq!(r.problems, 4, "{found:?}");
}

#[test]
fn check_requires_read_only_tables_when_asked() {
    let c = Case {
        mode: PagingMode::Pae,
        caps: Caps { large_pages: false, global_pages: false, nx: true },
        mem_bytes: 16 << 20,
    };
    let sim = SimMem::new(4096);
    let rec = Recorder::new(None);
    let (pt, layout) = build(&sim, &rec, &c, &[]).unwrap();
    let w = Walker::live(&rec, &sim, c.mode, pt.root);
    assert!(check(&w, &layout, &c.caps, false, |_| {}).ok());
    // Natively every pagetable page is writable: required read-only, each
    // one is a problem.
    let r = check(&w, &layout, &c.caps, true, |_| {});
    assert_eq!(r.problems, pt.stats.table_pages());
    assert!(r.problems().all(|p| matches!(p, crate::check::Problem::WritableTable { .. })));
    // Make every table page read-only in the direct map: the check passes.
    let mut tables = Vec::new();
    w.for_each_table(PAGE_OFFSET, 1 << 32, |pfn, _| tables.push(pfn));
    for t in tables {
        let e = w.pte(PAGE_OFFSET + (t.0 << 12)).unwrap();
        paravirt::native::write_entry(&e, e.read() & !PteFlags::RW.bits());
    }
    assert!(check(&w, &layout, &c.caps, true, |_| {}).ok());
}
