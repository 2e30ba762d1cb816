//! A process, as the scheduler and the system calls see it.
//!
//! Every process has a kernel stack of its own (two low-memory pages, in
//! the direct map), where the CPU (or the hypervisor, told with
//! `Cpu::load_sp0`) puts the frame of every entry from user mode; while
//! the process is not running its stack also holds the registers
//! `switch_context` saved. Its user memory is an `AddressSpace` plus the
//! regions it may touch (`Vma`s): a page fault inside one is resolved
//! (demand paging, copy-on-write), outside one kills the process.

use arch_i386::trap::EntryFrame;
use arch_i386::Pfn;
use mm::space::AddressSpace;

/// Task slots; pids are not reused while the kernel runs.
pub const MAX_TASKS: usize = 160;
/// Regions a process may have.
pub const MAX_VMAS: usize = 16;
/// Pages of a kernel stack. Four: under Xen PV a fork's path reaches a
/// multicall with its 64-entry arrays on the stack (about 3.5 KiB in
/// `remap`'s chain) from inside kmap_atomic_pte, and with 8 KiB a release
/// kernel ran off its stack's bottom into the page below (at 64 MiB a pte
/// page of another process, which Xen keeps read-only: the next push
/// faulted).
pub const KSTACK_PAGES: u32 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// May run (or runs: `Procs::current`).
    Runnable,
    /// Until the clock reaches this.
    Sleeping(u64),
    /// In `wait`, until a child ends.
    Waiting,
    /// Ended with this status, not yet reaped by its parent.
    Zombie(u32),
}

/// A region of user memory the process may touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vma {
    pub start: u32,
    pub end: u32,
    pub writable: bool,
    pub executable: bool,
}

impl Vma {
    pub fn contains(&self, va: u32) -> bool {
        (self.start..self.end).contains(&va)
    }
}

pub struct Task {
    pub pid: u32,
    pub ppid: u32,
    pub name: &'static str,
    pub state: State,
    /// The kernel stack pointer `switch_context` saved (not running).
    pub ctx_esp: u32,
    /// The first of the kernel stack's pages (none for the idle task,
    /// which runs on the boot stack).
    pub kstack: Option<Pfn>,
    pub space: Option<AddressSpace>,
    pub vmas: [Option<Vma>; MAX_VMAS],
    /// Where the next `mmap` goes.
    pub mmap_next: u32,
    /// `kill`ed: ends at its next return to user mode.
    pub killed: bool,
    /// Timer ticks left before it is preempted.
    pub slice: u32,
}

impl Task {
    pub fn new(pid: u32, ppid: u32, name: &'static str) -> Task {
        Task {
            pid,
            ppid,
            name,
            state: State::Runnable,
            ctx_esp: 0,
            kstack: None,
            space: None,
            vmas: [None; MAX_VMAS],
            mmap_next: user_abi::MMAP_BASE,
            killed: false,
            slice: 0,
        }
    }

    /// The top of the kernel stack (where the CPU puts the first word of
    /// an entry from user mode).
    pub fn kstack_top(&self) -> u32 {
        match self.kstack {
            Some(p) => arch_i386::layout::PAGE_OFFSET + (p.0 << 12) + KSTACK_PAGES * 4096,
            None => 0,
        }
    }

    /// The frame of the entry from user mode that is being handled: the
    /// first thing on the kernel stack.
    pub fn user_frame(&self) -> *mut EntryFrame {
        (self.kstack_top() as usize - core::mem::size_of::<EntryFrame>()) as *mut EntryFrame
    }

    pub fn vma(&self, va: u32) -> Option<Vma> {
        self.vmas.iter().flatten().find(|v| v.contains(va)).copied()
    }

    pub fn add_vma(&mut self, v: Vma) -> bool {
        match self.vmas.iter_mut().find(|s| s.is_none()) {
            Some(slot) => {
                *slot = Some(v);
                true
            }
            None => false,
        }
    }

    /// Whether `[addr, addr + len)` lies wholly inside the process's
    /// regions (writable ones if `write`): what a system call checks
    /// before it touches user memory.
    pub fn user_range_ok(&self, addr: u32, len: u32, write: bool) -> bool {
        let Some(end) = addr.checked_add(len) else { return false };
        if end > user_abi::USER_TOP {
            return false;
        }
        let mut at = addr;
        while at < end {
            match self.vma(at) {
                Some(v) if !write || v.writable => at = v.end,
                _ => return false,
            }
        }
        true
    }
}
