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

use arch_i386::layout::PAGE_OFFSET;
use arch_i386::paging::present;
use arch_i386::{Level, PteFlags, VirtAddr};

use paravirt::Mmu;

use crate::layout::{Layout, Section};
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

/// Applies [`restrict`] to every present entry of the direct map through
/// the backend, then flushes the TLB once. Returns the entries changed.
pub fn mark_rodata_ro<M: Mmu + ?Sized>(w: &Walker<M>, layout: &Layout, caps: &Caps) -> Result<u32, MmError> {
    let mode = w.mode;
    let image = layout.image;
    let pmd_size = mode.pmd_size();
    let end = layout.direct_map_end() as u64;
    let mut changed = 0;
    w.mmu.enter_lazy_mmu();
    let mut va = PAGE_OFFSET as u64;
    let result = (|| {
        while va < end {
            let Some(pmd) = w.pmd(va as u32) else {
                va += 1 << mode.pgd_shift();
                continue;
            };
            let v = pmd.read();
            if present(v) && w.is_large(v) {
                if image.overlaps_protected(va as u32, pmd_size) {
                    return Err(MmError::LargePage { va: VirtAddr(va as u32), what: "kernel image" });
                }
                let nv = restrict(v, Section::Data, caps);
                if nv != v {
                    w.mmu.set_pmd(&pmd, nv)?;
                    changed += 1;
                }
            } else if present(v) {
                let table = w.table_of(v).ok_or(MmError::Foreign { va: VirtAddr(va as u32), raw: v })?;
                let mut e = w.entry(table, Level::Pte, 0, va as u32);
                for i in 0..mode.ptrs_per_pte() {
                    if (e.vaddr().0 as u64) >= end {
                        break;
                    }
                    let pv = e.read();
                    if present(pv) {
                        let nv = restrict(pv, image.section(e.vaddr().0), caps);
                        if nv != pv {
                            w.mmu.set_pte(&e, nv)?;
                            changed += 1;
                        }
                    }
                    if i + 1 < mode.ptrs_per_pte() {
                        e = e.add(1);
                    }
                }
            }
            va += pmd_size as u64;
        }
        Ok(())
    })();
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
