//! The MMU ops, the lguest way.
//!
//! The host never loads the guest's pagetables into the MMU: it keeps
//! shadow pagetables, filled on demand from the guest's ones, and must be
//! told of every change to a table it may shadow. So every entry write of a
//! pinned table (one the host has seen: the Launcher's map, and every
//! pagetable the guest has loaded) is announced with SET_PTE (a pte: the
//! root it belongs to, the address it maps, the value) or SET_PMD (a
//! top-level entry: the host drops its shadow of it), queued on the async
//! ring in lazy-MMU mode. A table the host has never seen (the boot build's
//! new pages, a new address space before its first NEW_PGTABLE) is written
//! with plain stores: the host builds its shadow from what is there when
//! the guest first runs on it.
//!
//! The seed's build. The guest boots on the Launcher's linear map.
//! `pagetable_setup_start` adopts its kernel half into the kernel's root:
//! the pgd entries are copied, the pte pages under them shared, exactly as
//! natively with the head code's boot pagetable. One thing differs: the
//! Launcher maps everything user-accessible (0x7), and the kernel's pages
//! must not be. The guest runs in ring 1, which the MMU counts as
//! supervisor, so it does not need `_PAGE_USER` either: the backend clears
//! it in every adopted pte with plain stores, and since those entries are
//! live (shadowed), it then tells the host with one FLUSH_TLB(1) instead of
//! thousands of SET_PTEs (lguest's own answer for "entries changed behind
//! your back").
//!
//! The Launcher also maps all guest memory, which can be more than the
//! kernel's direct map (lowmem ends below 896 MiB, lower still with the
//! Switcher's 4 MiB reserved): pgd entries above the direct map are not
//! adopted, and ptes above it in the last adopted page are cleared, so the
//! vmalloc area starts empty; and the Launcher's pte pages sit at the top
//! of guest memory, so those above lowmem are copied, not shared: the
//! kernel could not reach them through its direct map.
//!
//! That is the only time the backend writes shadowed entries without
//! announcing them. Since everything else is announced, a TLB flush has
//! nothing left to do, and `flush_tlb_user`/`flush_tlb_kernel` send one
//! only while such unannounced writes are outstanding.
//!
//! `pagetable_setup_done` and `write_cr3` are NEW_PGTABLE.

use arch_i386::layout::PAGE_OFFSET;
use arch_i386::paging::present;
use arch_i386::{Level, PagingMode, Pfn, PteFlags, VirtAddr};
use core::sync::atomic::Ordering;
use paravirt::native;
use paravirt::{EntryRef, HvError, HvResult, Mmu, PagetableBuild, Pinning};

use crate::abi::nr;
use crate::transport::Host;
use crate::Lguest;

fn pa(pfn: Pfn) -> u32 {
    pfn.addr().0 as u32
}

impl<H: Host> Lguest<H> {
    /// A TLB flush: only needed if something was written behind the
    /// host's back. `kernel`: also kernel mappings (FLUSH_TLB(1)), else
    /// user only.
    fn flush(&self, kernel: bool) {
        if self.unannounced.swap(false, Ordering::Relaxed) {
            self.hc.call(nr::FLUSH_TLB, kernel as u32, 0, 0);
        }
    }

    fn switch_to(&self, root: Pfn) {
        self.hc.call(nr::NEW_PGTABLE, pa(root), 0, 0);
        self.cr3.store(root.0, Ordering::Relaxed);
    }
}

impl<H: Host> Mmu for Lguest<H> {
    fn set_pte(&self, at: &EntryRef, val: u64) -> HvResult {
        native::write_entry(at, val);
        match at.pinning() {
            Pinning::Unpinned => Ok(()),
            Pinning::Pinned => self.hc.announce(nr::SET_PTE, pa(at.root()), at.vaddr().0, val as u32),
        }
    }

    fn set_pte_range(&self, first: &EntryRef, count: u32, pfn: Pfn, flags: PteFlags) -> HvResult {
        if first.pinning() == Pinning::Unpinned {
            native::write_pte_range(first, count, pfn, flags);
            return Ok(());
        }
        for i in 0..count {
            self.set_pte(&first.add(i), self.make_pte(pfn.add(i), flags))?;
        }
        Ok(())
    }

    fn set_pmd(&self, at: &EntryRef, val: u64) -> HvResult {
        // 2-level: the pmd is the pgd entry; SET_PMD names its page and index.
        native::write_entry(at, val);
        match at.pinning() {
            Pinning::Unpinned => Ok(()),
            Pinning::Pinned => self.hc.announce(nr::SET_PMD, pa(at.table()), at.index(), 0),
        }
    }

    fn set_pgd(&self, at: &EntryRef, val: u64) -> HvResult {
        self.set_pmd(at, val)
    }

    fn pagetable_setup_start(&self, b: &mut PagetableBuild) -> HvResult {
        if b.mode != PagingMode::TwoLevel {
            return Err(HvError::local("lguest: the 2.6.24 host shadows 2-level pagetables only", &[]));
        }
        let boot = self.read_cr3();
        let user = PteFlags::USER.bits() as u32;
        let first = b.mode.pgd_index(PAGE_OFFSET);
        let (mut cleared, mut dropped, mut copied) = (0u32, 0u32, 0u32);
        let end = b.direct_map_end as u64;
        let max_low = ((end - PAGE_OFFSET as u64) >> 12) as u32;
        for i in first..b.mode.ptrs_per_pgd() {
            let pgd_va = (i as u64) << b.mode.pgd_shift();
            if pgd_va >= end {
                break;
            }
            let src = b.entry(boot, Level::Pmd, i, VirtAddr(0));
            let dst = b.entry(b.root, Level::Pmd, i, VirtAddr(0));
            let v = src.read() as u32;
            if !present(v as u64) || present(dst.read()) {
                continue;
            }
            let mut table = Pfn(v >> 12);
            if table.0 >= max_low {
                // The Launcher puts its tables at the top of guest memory,
                // which can be above lowmem: unreachable once the kernel's
                // own map is live. Such a pte page is copied into low memory
                // instead of shared.
                let copy = b
                    .new_table(false)
                    .map_err(|_| HvError::local("lguest: no page to copy a pte page into", &[]))?;
                if !b.mem.reachable(table) {
                    return Err(HvError::local(
                        "lguest: a Launcher pte page is not mapped",
                        &[table.0 as u64],
                    ));
                }
                // SAFETY: both frames are reachable (checked; the new one
                // comes from the build's allocator) and distinct; one page
                // each.
                unsafe { core::ptr::copy_nonoverlapping(b.mem.page(table), b.mem.page(copy), 4096) };
                table = copy;
                copied += 1;
            }
            // The new root is the build's: a plain store.
            native::write_entry(&dst, ((table.0 << 12) | (v & 0xFFF & !user)) as u64);
            if !b.mem.reachable(table) {
                return Err(HvError::local("lguest: a Launcher pte page is not mapped", &[table.0 as u64]));
            }
            // Entries from `keep` on map beyond the direct map.
            let keep = (((end - pgd_va) >> 12).min(1024)) as usize;
            // SAFETY: `table` is reachable (checked), so its 4096 bytes are
            // mapped and writable (the Launcher's pte page, or the build's
            // copy of one): 1024 aligned 2-level entries, nothing else
            // referring to them while the build runs.
            let ptes = unsafe { core::slice::from_raw_parts_mut(b.mem.page(table) as *mut u32, 1024) };
            // One pass over the page, plain loads and stores (every entry
            // of all guest memory is looked at: 229 376 at 896 MiB).
            let (mut c, mut d) = (0, 0);
            for (j, pte) in ptes.iter_mut().enumerate() {
                let old = *pte;
                if j >= keep && present(old as u64) {
                    *pte = 0;
                    d += 1;
                } else if old & user != 0 {
                    *pte = old & !user;
                    c += 1;
                }
            }
            // A shared page's entries are live in the host's shadows:
            // written without telling it, and told all at once below.
            if c + d > 0 && b.pinning_of(table) == Pinning::Pinned {
                self.unannounced.store(true, Ordering::Relaxed);
            }
            cleared += c;
            dropped += d;
        }
        let flushed = self.unannounced.load(Ordering::Relaxed);
        self.flush(true);
        log::info!(
            "lguest: adopted the Launcher's map from pgdir pfn {:#x}: {} entries made kernel-only, {} above the direct map dropped, {} pte pages above lowmem copied{}",
            boot.0,
            cleared,
            dropped,
            copied,
            if flushed { ", then one FLUSH_TLB" } else { "" }
        );
        Ok(())
    }

    fn pagetable_setup_done(&self, b: PagetableBuild) -> HvResult {
        self.switch_to(b.root);
        Ok(())
    }

    fn unpin(&self, root: Pfn, _tables: &mut dyn Iterator<Item = Pfn>) -> HvResult {
        // The host keeps up to four shadows keyed by the pgdir's address.
        // This page stops being a pgdir (it is freed next and may come back
        // as anything), so every entry the host may have shadowed is
        // dropped, the kernel half's too: they are the same as in every
        // other pgdir only while the page is one, and a shadow left behind
        // would map what the page no longer says (the host's audit reports
        // exactly that). One batch: at most 64 entries a trap.
        assert!(root.0 < (0u32.wrapping_sub(PAGE_OFFSET) >> 12));
        let mode = PagingMode::TwoLevel;
        let below_switcher =
            mode.ptrs_per_pgd() - (self.reserve_mem.load(Ordering::Relaxed) >> mode.pgd_shift());
        self.hc.batched(|| {
            for i in 0..below_switcher {
                // SAFETY: pagetable roots are low-memory frames (the kernel
                // allocates them from the direct-mapped zone), mapped at
                // PAGE_OFFSET + pa; i < 1024 entries of the page.
                let pde =
                    unsafe { ((PAGE_OFFSET + (root.0 << 12)) as *const u32).add(i as usize).read_volatile() };
                if present(pde as u64) {
                    self.hc.queue(nr::SET_PMD, pa(root), i, 0)?;
                }
            }
            Ok(())
        })
    }

    fn flush_tlb_single(&self, va: VirtAddr) -> HvResult {
        // 2.6.24: "Set it to zero: if it was not, it will fault back in."
        self.hc.queue(nr::SET_PTE, pa(self.read_cr3()), va.0, 0)
    }

    fn flush_tlb_user(&self) -> HvResult {
        self.flush(false);
        Ok(())
    }

    fn flush_tlb_kernel(&self) -> HvResult {
        self.flush(true);
        Ok(())
    }

    fn read_cr3(&self) -> Pfn {
        Pfn(self.cr3.load(Ordering::Relaxed))
    }

    unsafe fn write_cr3(&self, root: Pfn) -> HvResult {
        self.switch_to(root);
        Ok(())
    }

    fn enter_lazy_mmu(&self) {
        self.hc.enter_lazy();
    }

    fn leave_lazy_mmu(&self) -> HvResult {
        self.hc.leave_lazy();
        Ok(())
    }

    fn flush_lazy_mmu(&self) -> HvResult {
        // A kmap_atomic_pte inside fork's batch: the host's shadows must
        // map the slot's new frame (not the one it mapped before) before
        // the kernel reads through it.
        self.hc.flush_lazy();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::fake::{FakeHost, Pages};
    use paravirt::{Caps, PageAlloc, PhysMem};
    use std::vec::Vec;

    const PAGES: u32 = 4096; // 16 MiB of guest memory
    /// The Launcher's layout: pte pages right below the pgdir, at the top.
    const PGDIR: u32 = PAGES - 1;
    const FIRST_PTE: u32 = PGDIR - 4;

    struct Bump(u32);
    impl PageAlloc for Bump {
        fn alloc_page(&mut self) -> Option<Pfn> {
            self.0 += 1;
            Some(Pfn(self.0))
        }
    }

    /// A guest booted on a Launcher-style linear map of all 16 MiB.
    /// Entry 7 of pte page `table` in `mem` (it maps 0xC000_7000 in the
    /// pgdir at PGDIR).
    fn entry7(mem: &Pages, table: u32, pinning: Pinning) -> EntryRef {
        // SAFETY: entry 7 of a page of `mem`, which outlives the test's use.
        unsafe {
            EntryRef::new(
                PagingMode::TwoLevel,
                Level::Pte,
                Pfn(table),
                7,
                mem.page(Pfn(table)).add(28),
                VirtAddr(0xC000_7000),
                Pfn(PGDIR),
                pinning,
            )
        }
    }

    fn launched() -> (Lguest<FakeHost>, Pages) {
        let mem = Pages::new(PAGES);
        for p in 0..PAGES {
            mem.write(FIRST_PTE + p / 1024, p % 1024, (p << 12) | 7);
        }
        for t in 0..4 {
            let pde = ((FIRST_PTE + t) << 12) | 7;
            mem.write(PGDIR, t, pde);
            mem.write(PGDIR, 768 + t, pde);
        }
        let lg = Lguest::new(FakeHost::new());
        lg.cr3.store(PGDIR, Ordering::Relaxed);
        (lg, mem)
    }

    fn build<'a>(mem: &'a Pages, alloc: &'a mut Bump, direct_map_end: u32) -> PagetableBuild<'a> {
        let caps = Caps { large_pages: false, global_pages: false, nx: false };
        PagetableBuild::new(PagingMode::TwoLevel, mem, alloc, caps, direct_map_end).unwrap()
    }

    #[test]
    fn adoption_shares_pte_pages_clears_user_and_tells_the_host_once() {
        let (lg, mem) = launched();
        let mut alloc = Bump(0x400);
        let mut b = build(&mem, &mut alloc, PAGE_OFFSET + (PAGES << 12));
        lg.pagetable_setup_start(&mut b).unwrap();
        for t in 0..4 {
            assert_eq!(mem.read(b.root.0, 768 + t), ((FIRST_PTE + t) << 12) | 3, "shared, not copied");
        }
        assert_eq!(mem.read(b.root.0, 0), 0, "the user half is not adopted");
        assert_eq!(mem.read(FIRST_PTE, 5), (5 << 12) | 3, "USER cleared in place");
        // Thousands of live entries changed, one FLUSH_TLB(1) said so.
        let done = lg.hc.host.done();
        let flushes: Vec<_> = done.iter().filter(|c| c.0 == nr::FLUSH_TLB).collect();
        assert_eq!(flushes, [&(nr::FLUSH_TLB, 1, 0, 0, false)]);
        assert!(!done.iter().any(|c| c.0 == nr::SET_PTE || c.0 == nr::SET_PMD));
    }

    #[test]
    fn memory_beyond_the_direct_map_is_dropped_and_high_tables_copied() {
        let (lg, mem) = launched();
        let mut alloc = Bump(0x400);
        // Lowmem ends at 10 MiB: the Launcher's tables (at the top of
        // 16 MiB) are beyond it and must be copied; entries above 10 MiB
        // in the third pte page dropped, the fourth pte page not adopted.
        let end = PAGE_OFFSET + (10 << 20);
        let mut b = build(&mem, &mut alloc, end);
        lg.pagetable_setup_start(&mut b).unwrap();
        let t2 = mem.read(b.root.0, 770) >> 12;
        assert!(t2 < FIRST_PTE && b.is_fresh(Pfn(t2)), "copied into a page of the build");
        assert_eq!(mem.read(b.root.0, 771), 0);
        assert_eq!(mem.read(t2, 0x200 - 1), ((0x800 + 0x1ff) << 12) | 3);
        assert_eq!(mem.read(t2, 0x200), 0, "above the direct map: dropped from the copy");
        assert_eq!(
            mem.read(FIRST_PTE + 2, 0x200),
            (0xa00 << 12) | 7,
            "the Launcher's own page is left alone"
        );
    }

    #[test]
    fn only_writes_the_host_may_shadow_are_announced_batched_on_the_ring() {
        let (lg, mem) = launched();
        let e = |table: u32, pinning| entry7(&mem, table, pinning);
        lg.set_pte(&e(0x500, Pinning::Unpinned), 0x0123_4003).unwrap();
        assert!(lg.hc.host.done().iter().all(|c| c.0 == nr::LGUEST_INIT), "plain store, host not told");
        lg.enter_lazy_mmu();
        for _ in 0..100 {
            lg.set_pte(&e(FIRST_PTE, Pinning::Pinned), 0x0123_4003).unwrap();
        }
        lg.leave_lazy_mmu().unwrap();
        let done = lg.hc.host.done();
        let ptes = done.iter().filter(|c| c.0 == nr::SET_PTE && c.4).count();
        let traps = done.iter().filter(|c| c.0 == nr::FLUSH_ASYNC && !c.4).count();
        assert_eq!(ptes, 100, "every shadowed write told, through the ring");
        assert_eq!(traps, 2, "one trap when the 64-slot ring filled, one to leave lazy mode");
        assert!(done.contains(&(nr::SET_PTE, PGDIR << 12, 0xC000_7000, 0x0123_4003, true)));
    }

    #[test]
    fn a_flush_inside_lazy_mode_sends_the_queue_and_stays_lazy() {
        let (lg, mem) = launched();
        let e = |table: u32, pinning| entry7(&mem, table, pinning);
        lg.enter_lazy_mmu();
        lg.set_pte(&e(FIRST_PTE, Pinning::Pinned), 0x0123_4003).unwrap();
        assert!(lg.hc.host.done().iter().all(|c| c.0 != nr::SET_PTE), "queued");
        lg.flush_lazy_mmu().unwrap();
        let done = lg.hc.host.done();
        assert!(done.contains(&(nr::SET_PTE, PGDIR << 12, 0xC000_7000, 0x0123_4003, true)), "sent");
        let traps = |lg: &Lguest<FakeHost>| {
            lg.hc.host.done().iter().filter(|c| c.0 == nr::FLUSH_ASYNC && !c.4).count()
        };
        assert_eq!(traps(&lg), 1);
        // Still lazy: the next write waits on the ring again.
        lg.set_pte(&e(FIRST_PTE, Pinning::Pinned), 0x0123_5003).unwrap();
        assert!(!lg.hc.host.done().iter().any(|c| c.3 == 0x0123_5003));
        lg.flush_lazy_mmu().unwrap();
        lg.flush_lazy_mmu().unwrap();
        assert_eq!(traps(&lg), 2, "nothing queued, no trap");
        lg.leave_lazy_mmu().unwrap();
    }

    #[test]
    fn skipped_updates_are_written_but_not_told() {
        let (lg, mem) = launched();
        lg.hc.skip_updates_from(2);
        for i in 0..3 {
            // SAFETY: entry i of the first pte page of `mem`.
            let at = unsafe {
                EntryRef::new(
                    PagingMode::TwoLevel,
                    Level::Pte,
                    Pfn(FIRST_PTE),
                    i,
                    mem.page(Pfn(FIRST_PTE)).add(4 * i as usize),
                    VirtAddr(0xC000_0000 + (i << 12)),
                    Pfn(PGDIR),
                    Pinning::Pinned,
                )
            };
            lg.set_pte(&at, 0x4_2001).unwrap();
            assert_eq!(mem.read(FIRST_PTE, i), 0x4_2001);
        }
        let told: Vec<u32> = lg.hc.host.done().iter().filter(|c| c.0 == nr::SET_PTE).map(|c| c.2).collect();
        assert_eq!(told, [0xC000_0000]);
    }
}
