//! How a run ends, and how a hypervisor operation fails.

use core::fmt;

use crate::bootinfo::BootInfoError;

/// The outcome of a run, as the Xen Test Framework defines it, ordered by
/// severity: when several things are reported, the most severe wins.
#[derive(Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord, Hash)]
pub enum ExitStatus {
    /// Everything checked held.
    Success,
    /// This configuration cannot run the test (an image with no backend for
    /// this platform, a CPU without what the kernel needs).
    Skip,
    /// Something went wrong that is not the kernel's fault (the test
    /// environment, a loader).
    Error,
    /// Something the kernel checked is wrong, or its input was bad.
    Failure,
}

impl ExitStatus {
    pub const ALL: [ExitStatus; 4] =
        [ExitStatus::Success, ExitStatus::Skip, ExitStatus::Error, ExitStatus::Failure];

    /// The word on the result line.
    pub const fn word(self) -> &'static str {
        match self {
            ExitStatus::Success => "SUCCESS",
            ExitStatus::Skip => "SKIP",
            ExitStatus::Error => "ERROR",
            ExitStatus::Failure => "FAILURE",
        }
    }

    pub fn from_word(w: &str) -> Option<ExitStatus> {
        ExitStatus::ALL.into_iter().find(|s| s.word() == w)
    }

    /// The value written to QEMU's isa-debug-exit port.
    pub const fn debug_exit_code(self) -> u8 {
        match self {
            ExitStatus::Success => 0x10,
            ExitStatus::Failure => 0x11,
            ExitStatus::Error => 0x12,
            ExitStatus::Skip => 0x13,
        }
    }

    /// QEMU's exit status after isa-debug-exit got `debug_exit_code`:
    /// `(v << 1) | 1`, i.e. 33 success, 35 failure, 37 error, 39 skip. None
    /// of them can be confused with QEMU's own 0 (shutdown, reboot) or 1.
    pub const fn qemu_status(self) -> i32 {
        ((self.debug_exit_code() as i32) << 1) | 1
    }

    pub fn from_qemu_status(status: i32) -> Option<ExitStatus> {
        ExitStatus::ALL.into_iter().find(|s| s.qemu_status() == status)
    }
}

/// Most arguments an error keeps; more are counted, not dropped silently.
pub const MAX_ARGS: usize = 6;

/// Arguments of a failed operation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Args {
    vals: [u64; MAX_ARGS],
    len: u8,
    /// Arguments given beyond `MAX_ARGS`.
    more: u8,
}

impl Args {
    pub fn new(args: &[u64]) -> Args {
        let mut vals = [0; MAX_ARGS];
        let n = args.len().min(MAX_ARGS);
        vals[..n].copy_from_slice(&args[..n]);
        Args { vals, len: n as u8, more: (args.len() - n).min(255) as u8 }
    }
    pub fn as_slice(&self) -> &[u64] {
        &self.vals[..self.len as usize]
    }
}

impl fmt::Display for Args {
    /// `(0x1, 0x2)`, with `, +N more` when some were not kept.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(")?;
        for (i, a) in self.as_slice().iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{a:#x}")?;
        }
        if self.more > 0 {
            write!(f, ", +{} more", self.more)?;
        }
        write!(f, ")")
    }
}

/// Why a backend operation failed. A hypervisor's refusal and a backend's
/// own finding are different things and print differently: only the first
/// carries an error code, and it is the hypervisor's.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum HvError {
    /// The hypervisor refused `op(args)` with `code` (an errno, negative).
    Refused { op: &'static str, args: Args, code: i64 },
    /// Entry `index` of a batch of `count` failed (the entry is the
    /// arguments; `op` names the batch, e.g. `mmu_update`).
    BatchEntry { op: &'static str, index: u32, count: u32, args: Args, code: i64 },
    /// The backend itself found `what` wrong; no hypercall failed.
    Local { what: &'static str, args: Args },
    /// The boot information a backend gathered is malformed.
    BootInfo(BootInfoError),
}

impl HvError {
    pub fn refused(op: &'static str, args: &[u64], code: i64) -> HvError {
        HvError::Refused { op, args: Args::new(args), code }
    }
    pub fn local(what: &'static str, args: &[u64]) -> HvError {
        HvError::Local { what, args: Args::new(args) }
    }
    pub fn batch_entry(op: &'static str, index: u32, count: u32, entry: &[u64], code: i64) -> HvError {
        HvError::BatchEntry { op, index, count, args: Args::new(entry), code }
    }
    /// The hypervisor's error code, if a hypervisor refused something.
    pub fn code(&self) -> Option<i64> {
        match *self {
            HvError::Refused { code, .. } | HvError::BatchEntry { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl fmt::Display for HvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = |f: &mut fmt::Formatter<'_>, c: i64| {
            write!(f, "failed: {c}")?;
            match errno_name(c) {
                Some(name) => write!(f, " ({name})"),
                None => Ok(()),
            }
        };
        match self {
            HvError::Refused { op, args, code: c } => {
                write!(f, "{op}{args} ")?;
                code(f, *c)
            }
            HvError::BatchEntry { op, index, count, args, code: c } => {
                write!(f, "{op} entry {index} of {count} {args} ")?;
                code(f, *c)
            }
            HvError::Local { what, args } if args.as_slice().is_empty() => write!(f, "{what}"),
            HvError::Local { what, args } => write!(f, "{what} {args}"),
            HvError::BootInfo(e) => write!(f, "bad boot information: {e}"),
        }
    }
}

impl fmt::Debug for HvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<BootInfoError> for HvError {
    fn from(e: BootInfoError) -> Self {
        HvError::BootInfo(e)
    }
}

/// Xen and Linux share the classic errno numbering.
fn errno_name(code: i64) -> Option<&'static str> {
    Some(match code {
        -1 => "EPERM",
        -2 => "ENOENT",
        -3 => "ESRCH",
        -12 => "ENOMEM",
        -13 => "EACCES",
        -14 => "EFAULT",
        -16 => "EBUSY",
        -17 => "EEXIST",
        -22 => "EINVAL",
        -38 => "ENOSYS",
        -95 => "EOPNOTSUPP",
        _ => return None,
    })
}

pub type HvResult<T = ()> = Result<T, HvError>;

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;

    #[test]
    fn a_refusal_names_op_args_and_code() {
        let e = HvError::refused("mmuext_op", &[0x2, 0xfff_ffff], -22);
        assert_eq!(format!("{e}"), "mmuext_op(0x2, 0xfffffff) failed: -22 (EINVAL)");
        assert_eq!(e.code(), Some(-22));
    }

    #[test]
    fn a_batch_entry_names_its_index() {
        let e = HvError::batch_entry("mmu_update", 5, 128, &[0x1234_5008, 0x7_0063], -22);
        assert_eq!(format!("{e}"), "mmu_update entry 5 of 128 (0x12345008, 0x70063) failed: -22 (EINVAL)");
    }

    #[test]
    fn a_local_failure_has_no_errno() {
        let e = HvError::local("xen: pagetable page beyond the pending set", &[0x4_0000]);
        assert_eq!(format!("{e}"), "xen: pagetable page beyond the pending set (0x40000)");
        assert_eq!(e.code(), None);
        assert_eq!(format!("{}", HvError::local("lguest: no page", &[])), "lguest: no page");
    }

    #[test]
    fn extra_arguments_are_counted_not_dropped() {
        let e = HvError::refused("multicall", &[1, 2, 3, 4, 5, 6, 7, 8], -1);
        assert_eq!(format!("{e}"), "multicall(0x1, 0x2, 0x3, 0x4, 0x5, 0x6, +2 more) failed: -1 (EPERM)");
    }

    #[test]
    fn statuses_order_by_severity_and_map_to_distinct_qemu_statuses() {
        use ExitStatus::*;
        assert!(Success < Skip && Skip < Error && Error < Failure);
        let mut seen = std::vec::Vec::new();
        for s in ExitStatus::ALL {
            let q = s.qemu_status();
            // QEMU's own statuses are 0 (shutdown, reboot) and 1 (error).
            assert!(q > 1, "{s:?}");
            assert!(!seen.contains(&q), "{s:?} shares {q}");
            seen.push(q);
            assert_eq!(ExitStatus::from_qemu_status(q), Some(s));
            assert_eq!(ExitStatus::from_word(s.word()), Some(s));
        }
        assert_eq!(Success.qemu_status(), 33);
        assert_eq!(Failure.qemu_status(), 35);
    }
}
