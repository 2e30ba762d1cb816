//! The system calls of the pvops kernel, as its user programs see them.
//!
//! `int 0x80` with the call number in eax and up to four arguments in ebx,
//! ecx, edx and esi (Linux's i386 convention); the result comes back in
//! eax, a negative value being `-errno`. Every register but eax is
//! preserved. One definition, used by the kernel (`kernel/src/syscall.rs`)
//! and by the user library (`user/lib`).
//!
//! A new process starts at its ELF entry with eax = the argument its
//! creator gave (`spawn`), and esp at the top of a stack the kernel
//! demand-faults.
#![no_std]

/// The vector of the system-call trap.
pub const SYSCALL_VECTOR: u8 = 0x80;

pub mod nr {
    /// exit(code): ends the process; code & 0xFF reaches the parent.
    pub const EXIT: u32 = 1;
    /// write(ptr, len) -> len: to the console.
    pub const WRITE: u32 = 2;
    pub const GETPID: u32 = 3;
    pub const GETPPID: u32 = 4;
    /// fork() -> child's pid in the parent, 0 in the child.
    pub const FORK: u32 = 5;
    /// wait(status_ptr) -> pid of a child that ended (blocks until one
    /// does), -ECHILD if there is none. `*status_ptr` gets its status (see
    /// [`crate::status`]).
    pub const WAIT: u32 = 6;
    /// yield(): let another runnable process run.
    pub const YIELD: u32 = 7;
    /// sleep(ms): block for at least `ms` milliseconds.
    pub const SLEEP: u32 = 8;
    /// mmap(len) -> address: `len` bytes (rounded up to pages) of
    /// anonymous, zero-filled, read-write memory, faulted in on first
    /// touch.
    pub const MMAP: u32 = 9;
    /// munmap(addr, len): the pages go back at once.
    pub const MUNMAP: u32 = 10;
    /// spawn(name_ptr, name_len, arg) -> pid: a new process running the
    /// embedded program `name`, a child of the caller.
    pub const SPAWN: u32 = 11;
    /// time() -> milliseconds since boot.
    pub const TIME: u32 = 12;
    /// kill(pid): end a child (status: killed).
    pub const KILL: u32 = 13;
    /// The number of calls (all numbers are below it).
    pub const COUNT: u32 = 14;
}

/// Error numbers (Linux's), returned negated.
pub mod errno {
    pub const ENOENT: i32 = 2;
    pub const ESRCH: i32 = 3;
    pub const EAGAIN: i32 = 11;
    pub const ENOMEM: i32 = 12;
    pub const EFAULT: i32 = 14;
    pub const ECHILD: i32 = 10;
    pub const EINVAL: i32 = 22;
    pub const ENOSYS: i32 = 38;
}

/// What `wait` reports about a child.
pub mod status {
    /// The child called exit(code).
    pub const fn exited(code: u32) -> u32 {
        code & 0xFF
    }
    /// The kernel killed it for exception `vector` (a fault it could not
    /// resolve: a touch of kernel memory, an invalid opcode, ...).
    pub const fn faulted(vector: u32) -> u32 {
        FAULTED | vector
    }
    pub const FAULTED: u32 = 0x100;
    /// Another process killed it (`kill`).
    pub const KILLED: u32 = 0x200;
}

/// Where user memory is: below this address (the kernel's PAGE_OFFSET).
pub const USER_TOP: u32 = 0xC000_0000;
/// The top of a new process's stack, and how far it may grow down.
pub const STACK_TOP: u32 = 0xBFFF_F000;
pub const STACK_SIZE: u32 = 256 * 1024;
/// Where `mmap` places memory (upward from here).
pub const MMAP_BASE: u32 = 0x4000_0000;

/// init's argument, which the kernel builds and init decodes:
/// `n_children | max_mib << 8 | flags << 16`.
pub mod init {
    /// Do not spawn the spinner (the process that only the timer stops).
    pub const NO_SPINNER: u32 = 1 << 0;
    /// Do not spawn the programs that must fault (bad-kernel-read, bad-ud2).
    pub const NO_FAULTS: u32 = 1 << 1;
    /// A fork the kernel refuses (init's or a child's) is reported and
    /// counted, not a failure: for rows that make a fork fail on purpose.
    pub const FORK_MAY_FAIL: u32 = 1 << 2;
    /// A line for every process init sees end.
    pub const VERBOSE: u32 = 1 << 3;

    /// What init is asked to do.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Arg {
        /// Children forked, each running the workload.
        pub n_children: u8,
        /// The largest region a child maps, in MiB (at least 1).
        pub max_mib: u8,
        pub flags: u16,
    }

    impl Arg {
        pub const fn encode(self) -> u32 {
            self.n_children as u32 | (self.max_mib as u32) << 8 | (self.flags as u32) << 16
        }

        pub const fn decode(arg: u32) -> Arg {
            Arg { n_children: arg as u8, max_mib: (arg >> 8) as u8, flags: (arg >> 16) as u16 }
        }

        pub const fn has(self, flag: u32) -> bool {
            self.flags as u32 & flag != 0
        }
    }
}
