//! The seam between the backend's logic and the hypervisor: the pagetable
//! hypercalls as a trait.
//!
//! In the kernel the calls go through the hypercall page
//! ([`crate::hypercall::HypercallPage`]). On the host, a fake Xen
//! ([`crate::fake::FakeXen`]) records every call and can refuse the Nth
//! entry, so batching, chunking, the build's remapping and the error paths
//! are tested by `cargo test`, not only by a boot.
//!
//! Every method returns Xen's result (0 or a negative errno) and fills what
//! Xen fills: `done` (entries processed before a failure) or each
//! multicall entry's `result`.

use crate::abi::{MmuUpdate, MmuextOp};

/// One sub-call of a multicall, as the backend builds it. The kernel's
/// transport turns each into a `multicall_entry` (its arrays and its
/// `done` counter passed by address); the fake Xen reads them as they are.
#[derive(Debug)]
pub enum SubCall<'a> {
    /// `mmu_update(reqs, reqs.len(), &done, DOMID_SELF)`.
    MmuUpdate(&'a mut [MmuUpdate]),
    /// `mmuext_op(ops, ops.len(), &done, DOMID_SELF)`.
    Mmuext(&'a mut [MmuextOp]),
    /// `update_va_mapping(va, val, flags)`: Xen finds the pte itself.
    UpdateVaMapping { va: u32, val: u64, flags: u32 },
}

impl SubCall<'_> {
    /// Entries the sub-call carries (an update_va_mapping is one).
    pub fn len(&self) -> usize {
        match self {
            SubCall::MmuUpdate(r) => r.len(),
            SubCall::Mmuext(o) => o.len(),
            SubCall::UpdateVaMapping { .. } => 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What Xen wrote back for one sub-call: its result (0 or a negative
/// errno) and, for mmu_update and mmuext_op, how many entries it
/// processed before stopping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubResult {
    pub rc: i32,
    pub done: u32,
}

pub trait Hypercalls: Sync + 'static {
    /// `mmu_update(reqs, reqs.len(), &done, DOMID_SELF)`: checked writes of
    /// pagetable entries by machine address.
    fn mmu_update(&self, reqs: &mut [MmuUpdate], done: &mut u32) -> i32;

    /// `mmuext_op(ops, ops.len(), &done, DOMID_SELF)`: pin, unpin, new
    /// baseptr, TLB flushes.
    fn mmuext_op(&self, ops: &mut [MmuextOp], done: &mut u32) -> i32;

    /// `update_va_mapping(va, val, flags)`: Xen walks the live pagetable to
    /// the pte of `va` and writes `val` there, checked.
    fn update_va_mapping(&self, va: u32, val: u64, flags: u32) -> i32;

    /// `multicall(calls, calls.len())`: several hypercalls in one trap
    /// (at most [`crate::batch::MULTICALL_MAX`]); Xen runs them in order,
    /// writes each one's result into `results` (as long as `calls`), and
    /// does not stop at a failing one.
    fn multicall(&self, calls: &mut [SubCall], results: &mut [SubResult]) -> i32;

    /// Should the pagetable hypercall about to be made be sabotaged (its
    /// last entry, a multicall's first sub-call's last entry, made to name
    /// a machine frame that does not exist, so Xen refuses it)? Asked once
    /// per mmu_update, mmuext_op, update_va_mapping and multicall;
    /// the `xen_fail_hypercall=N` test switch answers yes for the Nth.
    fn sabotage_next(&self) -> bool {
        false
    }

    /// Arms `sabotage_next` for the next pagetable hypercall; `false` if
    /// this transport cannot.
    fn sabotage_following(&self) -> bool {
        false
    }
}

/// A machine frame no machine has (2^40 bytes up, beyond the physical
/// address width): Xen answers it with an error. (A smaller bogus frame
/// may be MMIO, which dom0 is allowed to map.)
pub const BOGUS_MFN: u32 = 0x0FFF_FFFF;
