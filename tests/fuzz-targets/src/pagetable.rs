//! The idempotent pagetable build over an arbitrary pre-existing pagetable
//! (what a hypervisor or the head code may leave), paging mode, CPU caps
//! and memory size, driven through the recording backend; it checks what
//! `prepopulated_mappings_survive_property` in `crates/mm/src/tests.rs`
//! checks: every pre-existing entry survives bit for bit, no pre-existing
//! table page is handed out again, writes into adopted tables say Pinned
//! and only those, and every low page ends up mapped exactly once, to
//! itself unless a pre-existing entry said otherwise.
//!
//! The input is read a byte at a time (missing bytes read as 0): mode,
//! caps, memory size, then per pmd what is there before the build. Whole
//! pte pages come from a small generator seeded by two input bytes, so an
//! input stays short while the fuzzer still steers every choice.

use std::collections::HashSet;
use std::vec::Vec;

use arch_i386::layout::PAGE_OFFSET;
use arch_i386::{Level, PagingMode, Pfn};
use mm::sim::{image, Event, Recorder, SimMem};
use mm::walk::Walker;
use mm::{pagetable_init, BootAlloc, Caps, Layout};
use paravirt::memmap::{MemoryMap, Region, RegionKind};
use paravirt::native::write_entry;
use paravirt::Pinning;

/// The kernel image's frames, as in mm's tests.
const IMAGE_PFNS: (Pfn, Pfn) = (Pfn(0x100), Pfn(0x200));

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else { return 0 };
        self.0 = rest;
        b
    }
}

/// xorshift32, seeded from the input: the entries of one pte page.
struct Gen(u32);

impl Gen {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
}

pub fn run(data: &[u8]) {
    let mut input = Input(data);
    let flags = input.byte();
    let mode = if flags & 1 == 0 { PagingMode::TwoLevel } else { PagingMode::Pae };
    let caps = Caps {
        large_pages: flags & 2 != 0,
        global_pages: flags & 4 != 0,
        nx: mode == PagingMode::Pae && flags & 8 != 0,
    };
    // 4 to 11 MiB: past the image, small enough that a run stays fast.
    let mem_bytes = (4 + (input.byte() % 8) as u64) << 20;
    let low = (mem_bytes >> 12) as u32;
    let sim = SimMem::new(low as usize);

    // The pre-existing pagetable, in the frames right after the image.
    let mut next = IMAGE_PFNS.1 .0;
    let mut take = || {
        next += 1;
        Pfn(next - 1)
    };
    let root = take();
    let mut pages = std::vec![root];
    let mut ptes: Vec<(Pfn, u32, u64, u32)> = Vec::new();
    let mut pmds: Vec<(u32, u64)> = Vec::new();
    {
        let rec = Recorder::new(None);
        let w = Walker::live(&rec, &sim, mode, root);
        if mode == PagingMode::Pae {
            let pmd = take();
            pages.push(pmd);
            write_entry(&w.pgd(PAGE_OFFSET), pmd.addr().0 | 1);
        }
        let per = mode.ptrs_per_pte();
        let mut pfn = 0;
        while pfn < low {
            let va = PAGE_OFFSET + (pfn << 12);
            let pmd = w.pmd(va).unwrap();
            match input.byte() % 4 {
                0 => {}
                1 | 2 => {
                    let t = take();
                    pages.push(t);
                    write_entry(&pmd, t.addr().0 | 0x63);
                    pmds.push((va, pmd.read()));
                    let density = input.byte() as u32;
                    let mut g = Gen(u32::from_le_bytes([input.byte(), input.byte(), 1, 0x9e]));
                    let e0 = w.entry(t, Level::Pte, 0, va);
                    for i in 0..per.min(low - pfn) {
                        if g.next() % 256 < density {
                            // Mostly the right frame; sometimes a foreign
                            // one, which the build must keep all the same.
                            let r = g.next();
                            let target = if !r.is_multiple_of(8) { pfn + i } else { (r >> 3) % low };
                            let v = ((target as u64) << 12) | 0x63;
                            write_entry(&e0.add(i), v);
                            ptes.push((t, i, v, va + i * 4096));
                        }
                    }
                }
                _ if pfn >= 0x400 && pfn + per <= low => {
                    // A large page, outside the image's pmd.
                    let v = ((pfn as u64) << 12) | 0xE3;
                    write_entry(&pmd, v);
                    pmds.push((va, v));
                }
                _ => {}
            }
            pfn += per;
        }
    }

    let mut map = MemoryMap::default();
    map.push(Region { start: 0, len: 0x9_F000, kind: RegionKind::Ram }).unwrap();
    map.push(Region { start: 0x10_0000, len: mem_bytes - 0x10_0000, kind: RegionKind::Ram }).unwrap();
    let layout = Layout::new(mode, map.ram_end_below_4g(), 0, image());
    let reserved = [IMAGE_PFNS, (IMAGE_PFNS.1, Pfn(next))];
    let Ok(mut alloc) = BootAlloc::new(&sim, &map, Pfn(0x100), Pfn(low), &reserved) else { return };
    let rec = Recorder::new(Some(root));
    // Running out of frames is an error value, and a fine answer.
    let Ok(pt) = pagetable_init(&rec, &sim, &mut alloc, &layout, caps, &mut |_| {}) else { return };
    let w = Walker::live(&rec, &sim, mode, pt.root);
    let ctx = (mode.name(), caps, mem_bytes >> 20);

    for &(t, i, v, _) in &ptes {
        assert_eq!(w.entry(t, Level::Pte, i, 0).read(), v, "{ctx:?}: pte {t:?}[{i}] changed");
    }
    for &(va, v) in &pmds {
        assert_eq!(w.pmd(va).unwrap().read(), v, "{ctx:?}: pmd for {va:#x} changed");
    }
    for e in rec.events.borrow().iter() {
        if let Event::AllocPt(p, _) | Event::AllocPd(p, _) = e {
            assert!(!pages.contains(p) || *p == pt.root, "{ctx:?}: {p:?} handed out again");
        }
        if let Event::Set(_, t, _, _, p) | Event::SetRange(t, _, _, _, p) = *e {
            let adopted = pages.contains(&t) && t != root;
            assert_eq!(p == Pinning::Pinned, adopted, "{ctx:?}: write into {t:?} said {p:?}");
        }
    }
    let kept: HashSet<u32> = ptes.iter().map(|&(_, _, _, va)| va).collect();
    let mut mapped = 0;
    w.for_each_mapping(PAGE_OFFSET, layout.direct_map_end() as u64, |m| {
        mapped += m.size / 4096;
        if m.size == 4096 && !kept.contains(&m.va) {
            assert_eq!(m.pfn.unwrap().0, (m.va - PAGE_OFFSET) >> 12, "{ctx:?}: {:#x}", m.va);
        }
    });
    assert_eq!(mapped, layout.max_low_pfn.0, "{ctx:?}: not every low page is mapped once");
}
