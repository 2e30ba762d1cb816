//! Telling the host about pagetable updates, and (for the negative test)
//! deliberately not telling it.
//!
//! The host never lets the CPU walk the guest's pagetables: it shadows
//! them. A changed entry therefore means nothing until the host hears of
//! it, through SET_PTE (one entry: the root it belongs to, the address it
//! maps, the new value) or SET_PMD (a top-level entry: the host drops its
//! shadow of it). Every entry this backend writes is announced right after
//! the write, queued on the async ring in lazy-MMU mode.
//!
//! `lguest_skip_notify=N` on the command line makes the Nth update (counted
//! from 1 over SET_PTE and SET_PMD announcements) a silent one: the entry
//! is written in guest memory, the host is not told, and the backend
//! believes it was. The host then keeps running the guest on its stale
//! shadow, and its final audit must report the mismatch.

use core::sync::atomic::{AtomicU32, Ordering};

use paravirt::HvResult;

use crate::abi::nr;
use crate::hypercall;

static UPDATES: AtomicU32 = AtomicU32::new(0);
/// 0: tell the host everything.
static SKIP: AtomicU32 = AtomicU32::new(0);

pub fn skip_update(n: u32) {
    SKIP.store(n, Ordering::Relaxed);
}

/// Announces one entry update (SET_PTE or SET_PMD and its arguments).
pub fn update(call: u32, arg1: u32, arg2: u32, arg3: u32) -> HvResult {
    let n = UPDATES.fetch_add(1, Ordering::Relaxed) + 1;
    if n == SKIP.load(Ordering::Relaxed) {
        let name = if call == nr::SET_PTE { "SET_PTE" } else { "SET_PMD" };
        log::warn!(
            "lguest: lguest_skip_notify={}: update {} ({}({:#x}, {:#x}, {:#x})) written but not told to the host",
            n,
            n,
            name,
            arg1,
            arg2,
            arg3
        );
        return Ok(());
    }
    hypercall::queue(call, arg1, arg2, arg3)
}

/// Updates announced (or skipped) so far.
pub fn updates() -> u32 {
    UPDATES.load(Ordering::Relaxed)
}
