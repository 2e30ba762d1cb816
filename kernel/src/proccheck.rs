//! Checks of every process's pagetable, made once while the workload has
//! the most processes alive (when init first waits, all its children
//! forked):
//!
//! - **W^X**: no user page writable and executable (where NX exists).
//! - **No user mapping of kernel memory**: the kernel half of each root
//!   has no USER entry, and every frame the user half maps is a user frame
//!   (counted in the frame references), never the kernel's.
//! - **Isolation**: no frame writable in two processes: sharing happens
//!   only copy-on-write, read-only until a write breaks it.
//! - **The seed's subtle point**: a kernel mapping set while one process's
//!   table is live (a fixmap slot, as kmap_atomic sets) is seen at once
//!   through every other process's table, with no pagetable enumerated,
//!   because all roots share the kernel's pte pages. Set with init live,
//!   then read through each other root by a software walk.
//!
//! The check also prints the ptdump of init's user half, for `cargo
//! xtask ptdump` (a grandchild's, copy-on-write, is printed at its exit:
//! `sched.rs`).
//!
//! After the workload, every free frame must be mapped writable in the
//! direct map: under Xen a pagetable page is read-only while Xen knows it
//! as one, and one left so would be a page the workload leaked to Xen.

use arch_i386::layout::PAGE_OFFSET;
use arch_i386::{Pfn, PteFlags};
use mm::fixmap::{self, FixSlot};
use mm::highmem::PteSlot;
use mm::walk::Walker;

use crate::sched::Procs;
use crate::{fail, kprintln};

pub fn processes(p: &mut Procs) {
    let hv = p.mem.hv;
    let nx = p.mem.nx;
    // Frames seen writable so far: one bit each, in a scratch page run.
    let end = p.mem.frames.end().0;
    let bitmap_pages = end.div_ceil(8 * 4096);
    let Some(first) = p.mem.frames.alloc_contiguous(bitmap_pages) else {
        fail!("process check: no room for its bitmap")
    };
    // SAFETY: contiguous low frames just allocated, in the direct map,
    // freed at the end of this function and used by nothing else.
    let seen = unsafe {
        core::slice::from_raw_parts_mut(
            (PAGE_OFFSET + (first.0 << 12)) as *mut u8,
            (bitmap_pages * 4096) as usize,
        )
    };
    seen.fill(0);
    let (mut spaces, mut pages, mut shared_writable, mut wx, mut kernel_user, mut not_user) =
        (0, 0, 0, 0, 0, 0);
    for t in p.tasks.iter().flatten() {
        let Some(space) = t.space.as_ref() else { continue };
        spaces += 1;
        let w = space.walker(hv.mmu(), &p.mem.mem);
        w.for_each_mapping(0, PAGE_OFFSET as u64, |m| {
            pages += 1;
            let rw = m.flags.contains(PteFlags::RW);
            if rw && nx && !m.flags.contains(PteFlags::NX) {
                wx += 1;
            }
            match m.pfn {
                Some(pfn) if p.refs.get(pfn) > 0 => {
                    if rw {
                        let (byte, bit) = ((pfn.0 / 8) as usize, 1 << (pfn.0 % 8));
                        if seen[byte] & bit != 0 {
                            shared_writable += 1;
                        }
                        seen[byte] |= bit;
                    }
                }
                _ => not_user += 1,
            }
        });
        w.for_each_mapping(PAGE_OFFSET, 1 << 32, |m| {
            if m.flags.contains(PteFlags::USER) {
                kernel_user += 1;
            }
        });
    }
    for i in 0..bitmap_pages {
        if p.mem.frames.free(first.add(i)).is_err() {
            fail!("process check: its bitmap freed twice");
        }
    }
    if let Some(space) = p.tasks[p.current].as_ref().and_then(|t| t.space.as_ref()) {
        let w = space.walker(hv.mmu(), &p.mem.mem);
        crate::selfcheck::user_half(&w, &p.mem.layout, format_args!("process 1 (init) at its first wait"));
    }
    let (high, high_writable, high_wrong) = high_pte_pages(p);
    let subtle = shared_kernel_ptes(p);
    kprintln!(
        "proccheck: {} address spaces, {} user pages: {} writable+executable, {} writable in two spaces, {} not user frames, {} USER entries in kernel halves; a fixmap entry set under pid {} seen through {} other roots",
        spaces,
        pages,
        wx,
        shared_writable,
        not_user,
        kernel_user,
        p.cur().pid,
        subtle
    );
    kprintln!(
        "proccheck: {} user pte pages in high memory, {} mapped writable by kmap_atomic_pte, {} against the paging policy ({})",
        high,
        high_writable,
        high_wrong,
        if p.mem.high.readonly_tables { "pinned pagetable pages read-only" } else { "pagetable pages writable" }
    );
    if high_wrong != 0 {
        fail!("process check: kmap_atomic_pte mapped a pinned pte page writable where pagetable pages must be read-only");
    }
    if wx + shared_writable + not_user + kernel_user != 0 {
        fail!("process check: a process's pagetable breaks W^X or isolation");
    }
    if subtle + 1 < spaces {
        fail!("process check: a kernel mapping set under one process was not seen through every other");
    }
}

/// Maps every high user pte page of every process through
/// kmap_atomic_pte and reads back the fixmap entry it got: returns the
/// pages, those mapped writable, and those mapped writable although their
/// table is pinned and the platform wants pagetable pages read-only.
fn high_pte_pages(p: &Procs) -> (u32, u32, u32) {
    let hv = p.mem.hv;
    let slot = fixmap::fix_to_virt(&p.mem.layout, FixSlot::KmapPte0);
    let kernel = p.mem.kernel();
    let (mut high, mut writable, mut wrong) = (0, 0, 0);
    for t in p.tasks.iter().flatten() {
        let Some(space) = t.space.as_ref() else { continue };
        let w = space.walker(hv.mmu(), &p.mem.mem);
        for pt in space.tables(hv.mmu(), &p.mem.mem).filter(|&pt| p.mem.high.holds(pt)) {
            high += 1;
            let page = match w.map_pte_page(pt, 0, PteSlot::Pte0) {
                Ok(page) => page,
                Err(e) => fail!("process check: kmap_atomic_pte of pte page {:?}: {}", pt, e),
            };
            let rw = kernel.pte(slot.0).is_some_and(|e| e.read() & PteFlags::RW.bits() != 0);
            if let Err(e) = w.unmap_pte_page(page) {
                fail!("process check: kunmap_atomic_pte of pte page {:?}: {}", pt, e);
            }
            if rw {
                writable += 1;
                if space.pinned() && p.mem.high.readonly_tables {
                    wrong += 1;
                }
            }
        }
    }
    (high, writable, wrong)
}

/// Sets the probe fixmap slot with the current process's table live, and
/// counts the other roots that translate it to the same frame.
fn shared_kernel_ptes(p: &mut Procs) -> u32 {
    let hv = p.mem.hv;
    let layout = p.mem.layout;
    let marker = Pfn(p.mem.kernel_root.0); // any frame will do: a known one
    let kernel = p.mem.kernel();
    let va = match fixmap::set_fixmap(&kernel, &layout, FixSlot::Probe, marker, PteFlags::ACCESSED) {
        Ok(va) => va,
        Err(e) => fail!("process check: setting the probe fixmap slot: {}", e),
    };
    let cur = p.current;
    let mut seen = 0;
    for (i, t) in p.tasks.iter().enumerate() {
        let Some(space) = t.as_ref().and_then(|t| t.space.as_ref()) else { continue };
        if i == cur {
            continue;
        }
        let w: Walker = space.walker(hv.mmu(), &p.mem.mem);
        if w.pte(va.0).is_some_and(|e| hv.mmu().pte_pfn(layout.mode, e.read()) == Some(marker)) {
            seen += 1;
        }
    }
    if let Err(e) = fixmap::clear_fixmap(&p.mem.kernel(), &layout, FixSlot::Probe) {
        fail!("process check: clearing the probe fixmap slot: {}", e);
    }
    seen
}

/// After the workload: every free low-memory frame is mapped writable in
/// the direct map. Returns how many were checked.
pub fn free_frames_writable(p: &Procs) -> u32 {
    let w = p.mem.kernel();
    let max_low = p.mem.frames.max_low().0;
    let (mut checked, mut readonly) = (0, 0);
    for pfn in 0..max_low {
        if !p.mem.frames.is_free(Pfn(pfn)) {
            continue;
        }
        checked += 1;
        let va = PAGE_OFFSET + (pfn << 12);
        let rw = match w.pte(va) {
            Some(e) => e.read() & PteFlags::RW.bits() != 0,
            // A large page: its pmd entry says.
            None => w.pmd(va).is_some_and(|e| e.read() & PteFlags::RW.bits() != 0),
        };
        if !rw {
            readonly += 1;
        }
    }
    if readonly != 0 {
        fail!("processes: {} free frames still mapped read-only (left as pagetables)", readonly);
    }
    checked
}
