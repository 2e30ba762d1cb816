//! How a run ends, and how a hypervisor operation fails.

use core::fmt;

/// The outcome of a boot, as XTF defines it: the most severe wins.
#[derive(Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord)]
pub enum ExitStatus {
    Success,
    /// Something the kernel checked is wrong, or its input was bad.
    Failure,
    /// The environment cannot run this kernel (unsupported CPU, no backend).
    Error,
}

impl ExitStatus {
    pub const fn word(self) -> &'static str {
        match self {
            ExitStatus::Success => "SUCCESS",
            ExitStatus::Failure => "FAILURE",
            ExitStatus::Error => "ERROR",
        }
    }
    /// The value written to QEMU's isa-debug-exit port. QEMU then exits with
    /// `(v << 1) | 1`: 0x21 (33) success, 0x23 (35) failure, 0x25 (37) error.
    /// None of them can be confused with QEMU's own 0 (shutdown/reboot) or 1.
    pub const fn debug_exit_code(self) -> u8 {
        match self {
            ExitStatus::Success => 0x10,
            ExitStatus::Failure => 0x11,
            ExitStatus::Error => 0x12,
        }
    }
}

/// A failed hypervisor operation: what was attempted, with which arguments,
/// and the hypervisor's error code. Printed as-is when a run fails.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HvError {
    pub op: &'static str,
    pub args: [u64; 4],
    pub nargs: u8,
    pub code: i64,
}

impl HvError {
    pub fn new(op: &'static str, args: &[u64], code: i64) -> HvError {
        let mut a = [0; 4];
        let n = args.len().min(4);
        a[..n].copy_from_slice(&args[..n]);
        HvError { op, args: a, nargs: n as u8, code }
    }
}

impl fmt::Display for HvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.op)?;
        for (i, a) in self.args[..self.nargs as usize].iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{a:#x}")?;
        }
        write!(f, ") failed: {}", self.code)?;
        if let Some(name) = errno_name(self.code) {
            write!(f, " ({name})")?;
        }
        Ok(())
    }
}

impl fmt::Debug for HvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Xen and Linux share the classic errno numbering.
fn errno_name(code: i64) -> Option<&'static str> {
    Some(match code {
        -1 => "EPERM",
        -2 => "ENOENT",
        -12 => "ENOMEM",
        -14 => "EFAULT",
        -16 => "EBUSY",
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
    fn error_names_op_args_and_code() {
        let e = HvError::new("mmu_update", &[0x1234_5008, 0x7_0063], -22);
        assert_eq!(format!("{e}"), "mmu_update(0x12345008, 0x70063) failed: -22 (EINVAL)");
    }

    #[test]
    fn exit_codes_are_distinct_from_qemus_own() {
        for s in [ExitStatus::Success, ExitStatus::Failure, ExitStatus::Error] {
            let qemu = ((s.debug_exit_code() as u32) << 1) | 1;
            assert!(qemu > 1);
        }
    }
}
