//! Batching pagetable updates (Linux's `xen_mc_batch`/`xen_mc_issue`).
//!
//! In lazy-MMU mode entry writes to validated pagetables are queued and
//! sent as one `mmu_update` per batch; outside it each goes at once.
//! Anything that depends on queued writes (a flush, a pin, a CR3 switch)
//! drains the queue first, so callers can treat every write as immediate.
//!
//! Xen stops an `mmu_update` or `mmuext_op` at the first entry it refuses
//! and says how many it did (`done`); a multicall runs every entry and
//! writes each one's result. Either way the error names the entry that
//! failed, with its own arguments, not the batch's first.

use paravirt::{HvError, HvResult};

use crate::abi::{MmuUpdate, MmuextOp, MulticallEntry};
use crate::transport::{Hypercalls, BOGUS_MFN};

/// Entries per mmu_update hypercall.
pub const MMU_BATCH: usize = 128;

/// Most entries in one multicall.
pub const MULTICALL_MAX: usize = 64;

/// The lazy-mode queue of `mmu_update` entries.
pub struct Queue {
    lazy: bool,
    n: usize,
    mmu: [MmuUpdate; MMU_BATCH],
}

impl Default for Queue {
    fn default() -> Self {
        Self::new()
    }
}

impl Queue {
    pub const fn new() -> Queue {
        Queue { lazy: false, n: 0, mmu: [MmuUpdate { ptr: 0, val: 0 }; MMU_BATCH] }
    }

    pub fn enter_lazy(&mut self) {
        self.lazy = true;
    }

    /// Leaves lazy mode and sends what is queued.
    pub fn leave_lazy<T: Hypercalls + ?Sized>(&mut self, hc: &T) -> HvResult {
        self.lazy = false;
        self.flush(hc)
    }

    pub fn is_lazy(&self) -> bool {
        self.lazy
    }

    /// Queues `*ptr = val` (ptr: the entry's machine address); sends the
    /// queue when it is full or when not in lazy mode.
    pub fn push<T: Hypercalls + ?Sized>(&mut self, hc: &T, ptr: u64, val: u64) -> HvResult {
        self.mmu[self.n] = MmuUpdate { ptr, val };
        self.n += 1;
        if !self.lazy || self.n == MMU_BATCH {
            self.flush(hc)?;
        }
        Ok(())
    }

    /// Sends whatever is queued.
    pub fn flush<T: Hypercalls + ?Sized>(&mut self, hc: &T) -> HvResult {
        if self.n == 0 {
            return Ok(());
        }
        let n = self.n;
        self.n = 0;
        if hc.sabotage_next() {
            self.mmu[n - 1].ptr = (BOGUS_MFN as u64) << 12;
        }
        let mut done = 0;
        let rc = hc.mmu_update(&mut self.mmu[..n], &mut done);
        if rc >= 0 {
            return Ok(());
        }
        // `done` entries went through; the next one failed. (Xen reads the
        // requests, it does not write them.)
        let i = (done as usize).min(n - 1);
        let failed = self.mmu[i];
        Err(HvError::batch_entry("mmu_update", i as u32, n as u32, &[failed.ptr, failed.val], rc as i64))
    }
}

/// Runs mmuext operations (the caller has drained the queue).
pub fn mmuext<T: Hypercalls + ?Sized>(hc: &T, ops: &mut [MmuextOp]) -> HvResult {
    if hc.sabotage_next() {
        if let Some(last) = ops.last_mut() {
            last.arg1 = BOGUS_MFN;
        }
    }
    let mut done = 0;
    let rc = hc.mmuext_op(ops, &mut done);
    if rc >= 0 {
        return Ok(());
    }
    let i = (done as usize).min(ops.len() - 1);
    let failed = ops[i];
    Err(HvError::batch_entry(
        "mmuext_op",
        i as u32,
        ops.len() as u32,
        &[failed.cmd as u64, failed.arg1 as u64],
        rc as i64,
    ))
}

/// Runs a multicall (the caller has drained the queue) and checks every
/// entry's result: Xen does not stop at a failing one. `op` names the
/// sub-call for the error message.
pub fn multicall<T: Hypercalls + ?Sized>(
    hc: &T,
    entries: &mut [MulticallEntry],
    op: &'static str,
) -> HvResult {
    assert!(entries.len() <= MULTICALL_MAX);
    if hc.sabotage_next() {
        if let Some(last) = entries.last_mut() {
            // update_va_mapping's high half: address bits no machine has.
            last.args[2] = 0x000F_FFFF;
        }
    }
    // Debug builds of Xen scribble over processed entries' arguments:
    // keep a copy (of what is sent) for the error message.
    let mut copy = [MulticallEntry::default(); MULTICALL_MAX];
    copy[..entries.len()].copy_from_slice(entries);
    let rc = hc.multicall(entries);
    if rc < 0 {
        return Err(HvError::refused("multicall", &[entries.len() as u64], rc as i64));
    }
    for (i, (e, orig)) in entries.iter().zip(&copy).enumerate() {
        let r = e.result as i32;
        if r < 0 {
            let a = orig.args;
            let args = [a[0] as u64, a[1] as u64, a[2] as u64, a[3] as u64];
            return Err(HvError::batch_entry(op, i as u32, entries.len() as u32, &args, r as i64));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::fake::{Call, FakeXen};
    use std::format;

    #[test]
    fn lazy_updates_go_in_batches_of_128() {
        let xen = FakeXen::new();
        let mut q = Queue::new();
        q.enter_lazy();
        for i in 0..300u64 {
            q.push(&xen, i * 8, i).unwrap();
        }
        assert_eq!(xen.calls().len(), 2, "two full batches so far");
        q.leave_lazy(&xen).unwrap();
        let sizes: std::vec::Vec<usize> = xen
            .calls()
            .iter()
            .map(|c| match c {
                Call::MmuUpdate(r) => r.len(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(sizes, [128, 128, 44]);
        // Order is kept across batches.
        let all: std::vec::Vec<u64> = xen
            .calls()
            .iter()
            .flat_map(|c| if let Call::MmuUpdate(r) = c { r.clone() } else { std::vec![] })
            .map(|u| u.val)
            .collect();
        assert_eq!(all, (0..300).collect::<std::vec::Vec<u64>>());
    }

    #[test]
    fn outside_lazy_mode_each_update_goes_at_once() {
        let xen = FakeXen::new();
        let mut q = Queue::new();
        q.push(&xen, 8, 1).unwrap();
        q.push(&xen, 16, 2).unwrap();
        assert_eq!(xen.calls().len(), 2);
    }

    #[test]
    fn the_failing_entry_is_the_one_reported() {
        let xen = FakeXen::new();
        xen.refuse_entry(1, 77, -22);
        let mut q = Queue::new();
        q.enter_lazy();
        for i in 0..100u64 {
            q.push(&xen, 0x1000 + i * 8, i).unwrap();
        }
        let e = q.leave_lazy(&xen).unwrap_err();
        assert_eq!(format!("{e}"), "mmu_update entry 77 of 100 (0x1268, 0x4d) failed: -22 (EINVAL)");
    }

    #[test]
    fn a_multicall_reports_its_failing_entry_with_its_own_arguments() {
        let xen = FakeXen::new();
        xen.refuse_entry(1, 5, -14);
        let mut mc = [MulticallEntry::default(); 8];
        for (i, e) in mc.iter_mut().enumerate() {
            e.op = crate::abi::nr::UPDATE_VA_MAPPING;
            e.args = [0xC000_0000 + i as u32 * 4096, 0x1061, 0, 2, 0, 0];
        }
        let e = multicall(&xen, &mut mc, "update_va_mapping").unwrap_err();
        assert_eq!(
            format!("{e}"),
            "update_va_mapping entry 5 of 8 (0xc0005000, 0x1061, 0x0, 0x2) failed: -14 (EFAULT)"
        );
    }

    #[test]
    fn mmuext_reports_the_op_xen_stopped_at() {
        let xen = FakeXen::new();
        xen.refuse_entry(1, 1, -22);
        let mut ops = [
            MmuextOp { cmd: 2, arg1: 0x100, arg2: 0 },
            MmuextOp { cmd: 5, arg1: 0x200, arg2: 0 },
            MmuextOp { cmd: 4, arg1: 0x300, arg2: 0 },
        ];
        let e = mmuext(&xen, &mut ops).unwrap_err();
        assert_eq!(format!("{e}"), "mmuext_op entry 1 of 3 (0x5, 0x200) failed: -22 (EINVAL)");
    }
}
