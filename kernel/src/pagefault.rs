//! Page faults: demand paging and copy-on-write for processes.
//!
//! Before processes exist every page fault is the kernel's bug.

use arch_i386::trap::EntryFrame;

/// Resolves the fault if it is a process's to have; `false`: not resolved
/// (the caller kills the process or stops the kernel).
pub fn handle(f: &mut EntryFrame, cr2: u32) -> bool {
    crate::sched::page_fault(f, cr2)
}
