//! The lguest guest ABI (Linux 2.6.24) from the host's side: the one
//! definition in `backend_lguest::abi` (hypercall numbers, the async ring,
//! `struct lguest_data` and its offsets, checked there against the struct),
//! named the way the host uses it.

pub use backend_lguest::abi::nr::{
    name, COUNT as NR_HCALLS, CRASH, FLUSH_ASYNC, FLUSH_TLB, HALT, LGUEST_INIT, LOAD_GDT, LOAD_IDT_ENTRY,
    NEW_PGTABLE, NOTIFY, SET_CLOCKEVENT, SET_PMD, SET_PTE, SET_STACK, TS,
};
pub use backend_lguest::abi::{
    off, FIRST_EXTERNAL_VECTOR, IRQ_ENABLED, LGUEST_IRQS, STATUS_DONE, SYSCALL_VECTOR, TIMER_IRQ,
};

/// Slots in the async ring.
pub const RING_SIZE: u32 = backend_lguest::abi::RING_SIZE as u32;
