//! Processes: who am I, make one, wait for one, end one, and time.

use core::fmt;

use user_abi::{nr, status};

use crate::{raw, Errno};

/// A process id, as the kernel numbers them (init is 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pid(pub u32);

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How a child ended, as `wait` reports it (`user_abi::status`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u32);

impl Status {
    pub const KILLED: Status = Status(status::KILLED);

    pub const fn exited(code: u32) -> Status {
        Status(status::exited(code))
    }

    pub const fn faulted(vector: u32) -> Status {
        Status(status::faulted(vector))
    }

    /// The exit code, if the child called exit.
    pub fn exit_code(self) -> Option<u8> {
        (self.0 & !0xFF == 0).then_some(self.0 as u8)
    }
}

/// `exited(0x2a)`, `faulted(14)`, `killed`: the forms init's messages use.
impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.0 {
            s if s & !0xFF == 0 => write!(f, "exited({s:#04x})"),
            s if s & !0xFF == status::FAULTED => write!(f, "faulted({})", s & 0xFF),
            status::KILLED => f.write_str("killed"),
            s => write!(f, "status({s:#x})"),
        }
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Ends the process; `code & 0xFF` reaches the parent's `wait`.
pub fn exit(code: u32) -> ! {
    // SAFETY: EXIT takes no pointer.
    unsafe { raw::syscall1(nr::EXIT, code) };
    // EXIT does not return. Were a kernel bug to make it, stopping with a
    // fault the parent sees beats running on past the end of the program.
    raw::invalid_opcode()
}

pub fn getpid() -> Pid {
    // SAFETY: GETPID takes no argument.
    Pid(unsafe { raw::syscall0(nr::GETPID) })
}

pub fn getppid() -> Pid {
    // SAFETY: GETPPID takes no argument.
    Pid(unsafe { raw::syscall0(nr::GETPPID) })
}

/// Which side of a fork this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fork {
    /// The original process, and the pid of its new child.
    Parent(Pid),
    /// The copy.
    Child,
}

/// A copy of this process (copy-on-write: each side sees its own writes).
pub fn fork() -> Result<Fork, Errno> {
    // SAFETY: FORK takes no argument; the child's copy of every Rust value
    // lives in the child's copy of memory, so ownership holds on each side.
    match Errno::check(unsafe { raw::syscall0(nr::FORK) })? {
        0 => Ok(Fork::Child),
        pid => Ok(Fork::Parent(Pid(pid))),
    }
}

/// Blocks until a child ends; its pid and how it ended. `ECHILD`: no
/// children left.
pub fn wait() -> Result<(Pid, Status), Errno> {
    let mut status = 0u32;
    // SAFETY: the kernel writes one u32 to a live, writable local.
    let pid = Errno::check(unsafe { raw::syscall1(nr::WAIT, (&raw mut status) as u32) })?;
    Ok((Pid(pid), Status(status)))
}

/// Lets another runnable process run.
pub fn yield_now() {
    // SAFETY: YIELD takes no argument.
    unsafe { raw::syscall0(nr::YIELD) };
}

/// Blocks for at least `ms` milliseconds.
pub fn sleep(ms: u32) -> Result<(), Errno> {
    // SAFETY: SLEEP takes no pointer.
    Errno::check(unsafe { raw::syscall1(nr::SLEEP, ms) }).map(drop)
}

/// Milliseconds since boot. Never an error: every value is a time.
pub fn time() -> u32 {
    // SAFETY: TIME takes no argument.
    unsafe { raw::syscall0(nr::TIME) }
}

/// A new child running the embedded program `name`, which starts with
/// eax = `arg`.
pub fn spawn(name: &str, arg: u32) -> Result<Pid, Errno> {
    // SAFETY: the kernel reads `name.len()` bytes of a live string.
    Errno::check(unsafe { raw::syscall3(nr::SPAWN, name.as_ptr() as u32, name.len() as u32, arg) }).map(Pid)
}

/// Ends a child; its status will be `Status::KILLED`.
pub fn kill(pid: Pid) -> Result<(), Errno> {
    // SAFETY: KILL takes no pointer.
    Errno::check(unsafe { raw::syscall1(nr::KILL, pid.0) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_init_prints_them() {
        assert_eq!(format!("{}", Status::exited(0x2a)), "exited(0x2a)");
        assert_eq!(format!("{}", Status::faulted(14)), "faulted(14)");
        assert_eq!(format!("{}", Status::KILLED), "killed");
        assert_eq!(format!("{}", Status(0x400)), "status(0x400)");
        assert_eq!(Status::exited(0x1FF).exit_code(), Some(0xFF));
        assert_eq!(Status::faulted(6).exit_code(), None);
    }

    #[test]
    fn off_the_kernel_every_call_is_enosys() {
        assert_eq!(fork(), Err(Errno::ENOSYS));
        assert_eq!(wait(), Err(Errno::ENOSYS));
        assert_eq!(spawn("hello", 0), Err(Errno::ENOSYS));
    }
}
