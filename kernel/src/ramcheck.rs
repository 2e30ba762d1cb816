//! Does the RAM the boot protocol promised exist?
//!
//! A loader can claim memory the machine lacks (a memory map entry past
//! the end of RAM). On a PC, reads there return all ones and writes
//! vanish, so the kernel would hand out frames that keep nothing, and the
//! run would go wrong far from the lie. Under lguest the Launcher's map
//! shows the truth (its backend checks that); on bare metal the only
//! witness is the memory itself: the last word of every directly mapped
//! RAM entry must keep what is written to it.

use arch_i386::layout::PAGE_OFFSET;
use mm::layout::{Layout, Section};
use paravirt::bootinfo::BootInfoError;
use paravirt::memmap::RegionKind;
use paravirt::BootInfo;

/// Checks the last word below the end of each RAM entry (clipped to the
/// direct map, which ends at `max_low_pfn`). The word is restored.
pub fn check(boot: &BootInfo, layout: &Layout) -> Result<(), BootInfoError> {
    let lowmem_end = (layout.max_low_pfn.0 as u64) << 12;
    for r in boot.memory.regions().iter().filter(|r| r.kind == RegionKind::Ram) {
        let end = r.end().min(lowmem_end);
        if end < r.start.saturating_add(4) {
            continue;
        }
        let at = end - 4;
        let va = (PAGE_OFFSET as u64 + at) as u32;
        // The kernel's text and rodata are read-only by now, and exist:
        // the kernel runs from them.
        if layout.image.section(va) != Section::Data {
            continue;
        }
        let p = va as usize as *mut u32;
        // SAFETY: `at` is below max_low_pfn, so the direct map maps it; the
        // word is put back before anything else runs (one CPU, and the
        // kernel takes no interrupt before irq::init).
        let kept = unsafe {
            let old = p.read_volatile();
            p.write_volatile(!old);
            let back = p.read_volatile();
            p.write_volatile(old);
            back == !old
        };
        if !kept {
            return Err(BootInfoError::RamMissing { map: boot.memory.source, at });
        }
    }
    Ok(())
}
