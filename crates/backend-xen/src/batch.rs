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

use crate::abi::{MmuUpdate, MmuextOp};
use crate::transport::{Hypercalls, SubCall, SubResult, BOGUS_MFN};

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

    /// Sends whatever is queued, then `update_va_mapping(va, val,
    /// flags)`: one hypercall either way, a multicall of both when
    /// something was queued (Linux's xen_mc_issue of a batch that ends in
    /// a kunmap_atomic).
    pub fn flush_then_va_mapping<T: Hypercalls + ?Sized>(
        &mut self,
        hc: &T,
        va: u32,
        val: u64,
        flags: u32,
    ) -> HvResult {
        if self.n == 0 {
            return update_va_mapping(hc, va, val, flags);
        }
        let n = self.n;
        self.n = 0;
        let mut calls = [SubCall::MmuUpdate(&mut self.mmu[..n]), SubCall::UpdateVaMapping { va, val, flags }];
        multicall(hc, &mut calls, &mut [SubResult::default(); 2])
    }

    /// Sends whatever is queued.
    pub fn flush<T: Hypercalls + ?Sized>(&mut self, hc: &T) -> HvResult {
        if self.n == 0 {
            return Ok(());
        }
        let n = self.n;
        self.n = 0;
        mmu_update(hc, &mut self.mmu[..n])
    }
}

/// Sends one `mmu_update` of `reqs` (the caller has drained the queue, if
/// order matters) and names the entry Xen stopped at if it refuses one.
pub fn mmu_update<T: Hypercalls + ?Sized>(hc: &T, reqs: &mut [MmuUpdate]) -> HvResult {
    let n = reqs.len();
    if n == 0 {
        return Ok(());
    }
    if hc.sabotage_next() {
        reqs[n - 1].ptr = (BOGUS_MFN as u64) << 12;
    }
    let mut done = 0;
    let rc = hc.mmu_update(reqs, &mut done);
    if rc >= 0 {
        return Ok(());
    }
    // `done` entries went through; the next one failed. (Xen reads the
    // requests, it does not write them.)
    let i = (done as usize).min(n - 1);
    let failed = reqs[i];
    Err(HvError::batch_entry("mmu_update", i as u32, n as u32, &[failed.ptr, failed.val], rc as i64))
}

/// One `update_va_mapping(va, val, flags)`: the direct-map pte of `va`,
/// found and written by Xen.
pub fn update_va_mapping<T: Hypercalls + ?Sized>(hc: &T, va: u32, mut val: u64, flags: u32) -> HvResult {
    if hc.sabotage_next() {
        val |= 0x000F_FFFF << 32;
    }
    let rc = hc.update_va_mapping(va, val, flags);
    if rc < 0 {
        return Err(HvError::refused("update_va_mapping", &[va as u64, val, flags as u64], rc as i64));
    }
    Ok(())
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
/// sub-call's result: Xen does not stop at a failing one, so the error is
/// the first sub-call that failed, naming its failing entry (the later
/// ones may have failed only because of it). `results` tells the caller
/// what each sub-call did, e.g. whether a switch went through.
pub fn multicall<T: Hypercalls + ?Sized>(
    hc: &T,
    calls: &mut [SubCall],
    results: &mut [SubResult],
) -> HvResult {
    assert!(!calls.is_empty() && calls.len() <= MULTICALL_MAX && results.len() == calls.len());
    if hc.sabotage_next() {
        // The last entry of the first sub-call: what Xen does with the
        // sub-calls after it is then its own business, as in a real
        // failure.
        match &mut calls[0] {
            SubCall::MmuUpdate(r) => {
                if let Some(last) = r.last_mut() {
                    last.ptr = (BOGUS_MFN as u64) << 12;
                }
            }
            SubCall::Mmuext(o) => {
                if let Some(last) = o.last_mut() {
                    last.arg1 = BOGUS_MFN;
                }
            }
            // Address bits no machine has in the entry's high half.
            SubCall::UpdateVaMapping { val, .. } => *val |= 0x000F_FFFF << 32,
        }
    }
    let rc = hc.multicall(calls, results);
    if rc < 0 {
        return Err(HvError::refused("multicall", &[calls.len() as u64], rc as i64));
    }
    let uvms = calls.iter().filter(|c| matches!(c, SubCall::UpdateVaMapping { .. })).count() as u32;
    let mut uvm = 0;
    for (c, r) in calls.iter().zip(results.iter()) {
        let code = r.rc as i64;
        // Xen reads the requests, it does not write them: what is in our
        // arrays is what it was sent.
        match c {
            SubCall::MmuUpdate(reqs) if r.rc < 0 => {
                let i = (r.done as usize).min(reqs.len() - 1);
                let e = reqs[i];
                return Err(HvError::batch_entry(
                    "mmu_update",
                    i as u32,
                    reqs.len() as u32,
                    &[e.ptr, e.val],
                    code,
                ));
            }
            SubCall::Mmuext(ops) if r.rc < 0 => {
                let i = (r.done as usize).min(ops.len() - 1);
                let o = ops[i];
                let args = [o.cmd as u64, o.arg1 as u64];
                return Err(HvError::batch_entry("mmuext_op", i as u32, ops.len() as u32, &args, code));
            }
            // update_va_mappings are numbered among themselves: a batch
            // of them is one multicall.
            SubCall::UpdateVaMapping { va, val, flags } if r.rc < 0 => {
                let args = [*va as u64, *val as u32 as u64, *val >> 32, *flags as u64];
                return Err(HvError::batch_entry("update_va_mapping", uvm, uvms, &args, code));
            }
            SubCall::UpdateVaMapping { .. } => uvm += 1,
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::fake::{Call, FakeXen};
    use crate::transport::{SubCall, SubResult};
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
        let mut mc: std::vec::Vec<SubCall> = (0..8)
            .map(|i| SubCall::UpdateVaMapping { va: 0xC000_0000 + i * 4096, val: 0x1061, flags: 2 })
            .collect();
        let mut results = [SubResult::default(); 8];
        let e = multicall(&xen, &mut mc, &mut results).unwrap_err();
        assert_eq!(
            format!("{e}"),
            "update_va_mapping entry 5 of 8 (0xc0005000, 0x1061, 0x0, 0x2) failed: -14 (EFAULT)"
        );
    }

    #[test]
    fn in_a_mixed_multicall_the_first_failing_sub_call_names_its_entry() {
        // Entries are numbered across the sub-calls: 0-9 the first
        // mmu_update, 10-12 the mmuext_op, 13-14 the second mmu_update.
        // Entry 6 fails; Xen runs the rest anyway, and the pin fails as a
        // consequence: the report is the cause.
        let xen = FakeXen::new();
        xen.refuse_entry(1, 6, -22);
        xen.refuse_entry(1, 10, -22);
        let mut remaps: std::vec::Vec<MmuUpdate> =
            (0..10u64).map(|i| MmuUpdate { ptr: 0x5000 + i * 8, val: i << 12 | 0x61 }).collect();
        let mut ops = [MmuextOp { cmd: 2, arg1: 0x100, arg2: 0 }, MmuextOp { cmd: 5, arg1: 0x100, arg2: 0 }];
        let mut release = [MmuUpdate { ptr: 0x6000, val: 0x63 }, MmuUpdate { ptr: 0x6008, val: 0x63 }];
        let mut calls =
            [SubCall::MmuUpdate(&mut remaps), SubCall::Mmuext(&mut ops), SubCall::MmuUpdate(&mut release)];
        let mut results = [SubResult::default(); 3];
        let e = multicall(&xen, &mut calls, &mut results).unwrap_err();
        assert_eq!(format!("{e}"), "mmu_update entry 6 of 10 (0x5030, 0x6061) failed: -22 (EINVAL)");
        assert_eq!(results[0], SubResult { rc: -22, done: 6 });
        assert_eq!(results[1], SubResult { rc: -22, done: 0 }, "the pin did not go through");
        assert_eq!(results[2], SubResult { rc: 0, done: 2 });
        assert_eq!(xen.calls().len(), 1, "one trap");
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
