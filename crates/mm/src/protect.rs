//! `mark_rodata_ro`: W^X for mappings the kernel did not make itself.
//!
//! `pagetable_init` gives every entry it creates its final permissions.
//! But it keeps entries it finds, and whoever built those (the head code's
//! boot pagetable, Xen's initial mapping, the lguest host) mapped the kernel
//! image read-write and executable. Linux fixes this after the pagetable is
//! up, in `mark_rodata_ro`; so do we: text becomes read-only, rodata
//! read-only and non-executable, everything else non-executable. The pass
//! only ever removes rights (plus "executable" for text, which it had), so
//! a page a backend made read-only stays read-only.
//!
//! Like Linux's, it visits only what can need it: the image's text and
//! rodata, and the runs of entries the build recorded as kept
//! (`BuildStats::kept`), not the whole direct map. At 896 MiB of 4 KiB
//! pages that is a few thousand entries instead of 229 376.

use arch_i386::layout::PAGE_OFFSET;
use arch_i386::paging::present;
use arch_i386::{Level, Pfn, PteFlags, VirtAddr};

use paravirt::Mmu;

use crate::layout::{Layout, Section};
use crate::ptdump::{Kept, MAX_KEPT_RUNS};
use crate::walk::Walker;
use crate::{Caps, MmError};

/// The raw entry with the rights `section` allows.
pub fn restrict(raw: u64, section: Section, caps: &Caps) -> u64 {
    let rw = PteFlags::RW.bits();
    let nx = if caps.nx { PteFlags::NX.bits() } else { 0 };
    match section {
        Section::Text => raw & !rw & !PteFlags::NX.bits(),
        Section::Rodata => (raw & !rw) | nx,
        Section::Data => raw | nx,
    }
}

/// Where [`mark_rodata_ro`] must look, as runs of direct-map frames: the
/// kernel image's text and rodata (the only pages whose rights differ
/// from plain data), and, where there is NX to add, every entry the build
/// kept (the rest of memory it wrote itself, with its final rights: see
/// `pagetable::prot`). Without NX, restricting plain data changes nothing
/// (`restrict` only adds NX), so a kept entry outside the image needs no
/// visit. If the build could not list every kept run, the whole direct
/// map. Sorted and merged: at most `MAX_KEPT_RUNS + 1` runs.
pub fn rodata_ranges(layout: &Layout, caps: &Caps, kept: &Kept) -> ([(Pfn, Pfn); MAX_KEPT_RUNS + 1], usize) {
    let mut out = [(Pfn(0), Pfn(0)); MAX_KEPT_RUNS + 1];
    let low = layout.max_low_pfn;
    if kept.unlisted > 0 {
        out[0] = (Pfn(0), low);
        return (out, 1);
    }
    let image = layout.image;
    let pfn = |va: u32| Pfn((va - PAGE_OFFSET) >> 12);
    out[0] = (pfn(image.text.0), Pfn((image.rodata_end.0 - PAGE_OFFSET).div_ceil(4096)));
    let mut n = 1;
    if caps.nx {
        for &r in kept.runs() {
            out[n] = r;
            n += 1;
        }
    }
    let runs = &mut out[..n];
    runs.sort_unstable_by_key(|r| r.0);
    let mut merged = 0;
    for i in 0..n {
        let (s, e) = (runs[i].0, runs[i].1.min(low));
        if s >= e {
            continue;
        }
        if merged > 0 && s <= runs[merged - 1].1 {
            runs[merged - 1].1 = runs[merged - 1].1.max(e);
        } else {
            runs[merged] = (s, e);
            merged += 1;
        }
    }
    (out, merged)
}

/// Linux's `mark_rodata_ro`, for the entries that can need it: applies
/// [`restrict`] through the backend to the present entries of the direct
/// map in the runs [`rodata_ranges`] gives, then flushes the TLB once.
/// Returns the entries changed.
///
/// It never reads the rest of the direct map: its cost follows the image
/// and what the build kept, not the size of memory. That it missed nothing
/// is not assumed: the self-check (`check::check`) walks every entry
/// afterwards and fails the boot on any writable text, writable rodata or
/// executable data.
pub fn mark_rodata_ro<M: Mmu + ?Sized>(
    w: &Walker<M>,
    layout: &Layout,
    caps: &Caps,
    kept: &Kept,
) -> Result<u32, MmError> {
    let (runs, n) = rodata_ranges(layout, caps, kept);
    let mut changed = 0;
    w.mmu.enter_lazy_mmu();
    let result = runs[..n].iter().try_for_each(|&(s, e)| restrict_run(w, layout, caps, s, e, &mut changed));
    // The hypervisor's error, if queued updates failed, is the more telling
    // one: it is reported first.
    let flushed = w.mmu.leave_lazy_mmu();
    flushed?;
    result?;
    if changed > 0 {
        w.mmu.flush_tlb_kernel()?;
    }
    Ok(changed)
}

/// Entries changed per `set_ptes` call.
const CHUNK: usize = 64;

/// Restricts the direct-map entries of frames `[first, end)`, one pmd at a
/// time: a large page as plain data (one overlapping the image is an
/// error: its pages need other rights), a pte page by reading it directly
/// and writing only the entries that change, in chunks.
fn restrict_run<M: Mmu + ?Sized>(
    w: &Walker<M>,
    layout: &Layout,
    caps: &Caps,
    first: Pfn,
    end: Pfn,
    changed: &mut u32,
) -> Result<(), MmError> {
    let mode = w.mode;
    let image = layout.image;
    let per = mode.ptrs_per_pte();
    let mut pfn = first.0;
    while pfn < end.0 {
        let base = pfn - pfn % per;
        let stop = (base + per).min(end.0);
        let va = PAGE_OFFSET + (base << 12);
        // None: a PAE pgd entry with no pmd page, nothing mapped there.
        if let Some(pmd) = w.pmd(va) {
            let v = pmd.read();
            if present(v) && w.is_large(v) {
                if image.overlaps_protected(va, mode.pmd_size()) {
                    return Err(MmError::LargePage { va: VirtAddr(va), what: "kernel image" });
                }
                let nv = restrict(v, Section::Data, caps);
                if nv != v {
                    w.mmu.set_pmd(&pmd, nv)?;
                    *changed += 1;
                }
            } else if present(v) {
                let table = w.table_of(v).ok_or(MmError::Foreign { va: VirtAddr(va), raw: v })?;
                let raw = w.raw_ptes(table);
                let page = w.entry(table, Level::Pte, 0, va);
                // The changes, a chunk at a time, one backend call each.
                let mut chunk = [(0u32, 0u64); CHUNK];
                let mut n = 0;
                // One section's run at a time: its rights are constant (a
                // page's first address decides its section).
                let mut i = pfn - base;
                while i < stop - base {
                    let at = va + (i << 12);
                    let section = image.section(at);
                    let next =
                        (image.next_boundary(at) - va as u64).div_ceil(4096).min((stop - base) as u64) as u32;
                    raw.try_for_each_present(i, next, |j, pv| {
                        let nv = restrict(pv, section, caps);
                        if nv != pv {
                            chunk[n] = (j, nv);
                            n += 1;
                            *changed += 1;
                            if n == CHUNK {
                                n = 0;
                                return w.mmu.set_ptes(&page, &chunk);
                            }
                        }
                        Ok(())
                    })?;
                    i = next;
                }
                w.mmu.set_ptes(&page, &chunk[..n])?;
            }
        }
        pfn = stop;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_removes_rights() {
        let caps = Caps { large_pages: false, global_pages: false, nx: true };
        let rwx = 0x1000 | 0x63;
        let nx = PteFlags::NX.bits();
        assert_eq!(restrict(rwx, Section::Text, &caps), 0x1061);
        assert_eq!(restrict(rwx, Section::Rodata, &caps), 0x1061 | nx);
        assert_eq!(restrict(rwx, Section::Data, &caps), rwx | nx);
        // A read-only pagetable page in data stays read-only.
        assert_eq!(restrict(0x1061, Section::Data, &caps), 0x1061 | nx);
        let no_nx = Caps { nx: false, ..caps };
        assert_eq!(restrict(rwx, Section::Data, &no_nx), rwx);
    }
}
