//! Batching pagetable updates (Linux's `xen_mc_batch`/`xen_mc_issue`).
//!
//! In lazy-MMU mode entry writes to live pagetables are queued and sent as
//! one `mmu_update` per batch; outside it each goes at once. Anything that
//! depends on queued writes (a flush, a pin, a CR3 switch) drains the
//! queue first, so callers can treat every write as immediate.

use spin::Mutex;

use crate::abi::{nr, MmuUpdate, MmuextOp, MulticallEntry, DOMID_SELF};
use crate::hypercall::{self, check, sabotage_this_one, BOGUS_MFN};
use paravirt::HvResult;

/// Entries per mmu_update hypercall.
pub const MMU_BATCH: usize = 128;

struct Queue {
    lazy: bool,
    n: usize,
    mmu: [MmuUpdate; MMU_BATCH],
}

static QUEUE: Mutex<Queue> =
    Mutex::new(Queue { lazy: false, n: 0, mmu: [MmuUpdate { ptr: 0, val: 0 }; MMU_BATCH] });

pub fn enter_lazy() {
    QUEUE.lock().lazy = true;
}

pub fn leave_lazy() -> HvResult {
    let mut q = QUEUE.lock();
    q.lazy = false;
    issue(&mut q)
}

/// Queues `*ptr = val` (ptr: machine address of the entry).
pub fn mmu_update(ptr: u64, val: u64) -> HvResult {
    let mut q = QUEUE.lock();
    let n = q.n;
    q.mmu[n] = MmuUpdate { ptr, val };
    q.n += 1;
    if !q.lazy || q.n == MMU_BATCH {
        issue(&mut q)?;
    }
    Ok(())
}

/// Sends whatever is queued.
pub fn flush() -> HvResult {
    issue(&mut QUEUE.lock())
}

fn issue(q: &mut Queue) -> HvResult {
    if q.n == 0 {
        return Ok(());
    }
    let n = q.n;
    q.n = 0;
    if sabotage_this_one() {
        q.mmu[0].ptr = (BOGUS_MFN as u64) << 12;
    }
    let first = q.mmu[0];
    let mut done: u32 = 0;
    let rc = hypercall::call(
        nr::MMU_UPDATE,
        [q.mmu.as_ptr() as u32, n as u32, &raw mut done as u32, DOMID_SELF, 0],
    );
    hypercall::count_entries(n as u32, 0, 0);
    check("mmu_update", rc, &[first.ptr, first.val, n as u64, done as u64])
}

/// Runs mmuext operations (after draining queued updates).
pub fn mmuext(ops: &mut [MmuextOp]) -> HvResult {
    flush()?;
    if sabotage_this_one() {
        ops[0].arg1 = BOGUS_MFN;
    }
    let mut done: u32 = 0;
    let rc = hypercall::call(
        nr::MMUEXT_OP,
        [ops.as_ptr() as u32, ops.len() as u32, &raw mut done as u32, DOMID_SELF, 0],
    );
    hypercall::count_entries(0, ops.len() as u32, 0);
    let failed = ops.get(done as usize).copied().unwrap_or_default();
    check("mmuext_op", rc, &[failed.cmd as u64, failed.arg1 as u64, ops.len() as u64, done as u64])
}

/// Most entries in one multicall.
pub const MULTICALL_MAX: usize = 64;

/// Runs a multicall (after draining queued updates) and checks every
/// entry's result: Xen does not stop at a failing one. `op` names the
/// sub-call for the error message.
pub fn multicall(entries: &mut [MulticallEntry], op: &'static str) -> HvResult {
    assert!(entries.len() <= MULTICALL_MAX);
    flush()?;
    if sabotage_this_one() {
        // update_va_mapping's high half: address bits no machine has.
        entries[0].args[2] = 0x000F_FFFF;
    }

    // Debug builds of Xen scribble over processed entries' arguments:
    // keep a copy for the error message.
    let mut copy = [MulticallEntry::default(); MULTICALL_MAX];
    copy[..entries.len()].copy_from_slice(entries);
    let rc = hypercall::call(nr::MULTICALL, [entries.as_ptr() as u32, entries.len() as u32, 0, 0, 0]);
    hypercall::count_entries(0, 0, entries.len() as u32);
    check("multicall", rc, &[entries.len() as u64])?;
    for (e, orig) in entries.iter().zip(&copy) {
        let r = e.result as i32;
        if r < 0 {
            let a = orig.args;
            return Err(paravirt::HvError::new(
                op,
                &[a[0] as u64, a[1] as u64, a[2] as u64, a[3] as u64],
                r as i64,
            ));
        }
    }
    Ok(())
}
