//! A bulk update of live pagetable entries, for the benchmarks: every
//! present 4 KiB pte of the direct map is written again with its own value
//! through the backend, in lazy-MMU mode, then the TLB is flushed once.
//!
//! Natively that is a loop of stores. Under Xen each write is an
//! `mmu_update` entry (batched, 128 to a hypercall); under lguest a
//! SET_PTE on the async ring (64 slots, one synchronous hypercall each time
//! it fills). It measures what batching buys when a kernel changes many
//! live mappings at once, as `change_page_attr` would.

use arch_i386::layout::PAGE_OFFSET;
use arch_i386::paging::present;
use arch_i386::{Level, VirtAddr};
use paravirt::Mmu;

use crate::layout::Layout;
use crate::walk::Walker;
use crate::MmError;

/// Returns the number of entries written.
pub fn rewrite_direct_map<M: Mmu + ?Sized>(w: &Walker<M>, layout: &Layout) -> Result<u32, MmError> {
    let mode = w.mode;
    let end = layout.direct_map_end() as u64;
    let mut written = 0;
    w.mmu.enter_lazy_mmu();
    let mut va = PAGE_OFFSET as u64;
    let result = (|| -> Result<(), MmError> {
        while va < end {
            if let Some(pmd) = w.pmd(va as u32) {
                let v = pmd.read();
                if present(v) && !w.is_large(v) {
                    let table = w.table_of(v).ok_or(MmError::Foreign { va: VirtAddr(va as u32), raw: v })?;
                    for i in 0..mode.ptrs_per_pte() {
                        let e = w.entry(table, Level::Pte, i, va as u32);
                        if e.vaddr().0 as u64 >= end {
                            break;
                        }
                        let pv = e.read();
                        if present(pv) {
                            w.mmu.set_pte(&e, pv)?;
                            written += 1;
                        }
                    }
                }
            }
            va += mode.pmd_size() as u64;
        }
        Ok(())
    })();
    let flushed = w.mmu.leave_lazy_mmu();
    flushed?;
    result?;
    w.mmu.flush_tlb_kernel()?;
    Ok(written)
}
