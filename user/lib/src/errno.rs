//! A refused call's reason: Linux's errno, which the kernel returns
//! negated in eax.

use core::fmt;

use user_abi::errno;

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    pub const ENOENT: Errno = Errno(errno::ENOENT);
    pub const ESRCH: Errno = Errno(errno::ESRCH);
    pub const ECHILD: Errno = Errno(errno::ECHILD);
    pub const EAGAIN: Errno = Errno(errno::EAGAIN);
    pub const ENOMEM: Errno = Errno(errno::ENOMEM);
    pub const EFAULT: Errno = Errno(errno::EFAULT);
    pub const EINVAL: Errno = Errno(errno::EINVAL);
    pub const ENOSYS: Errno = Errno(errno::ENOSYS);

    /// A raw result as Linux reads it: -4095..=-1 is an error, anything
    /// else a value (an mmap address above 2 GiB is negative as an i32,
    /// and still a value).
    pub fn check(raw: u32) -> Result<u32, Errno> {
        match raw as i32 {
            e @ -4095..=-1 => Err(Errno(-e)),
            _ => Ok(raw),
        }
    }

    pub fn name(self) -> &'static str {
        match self.0 {
            errno::ENOENT => "ENOENT",
            errno::ESRCH => "ESRCH",
            errno::ECHILD => "ECHILD",
            errno::EAGAIN => "EAGAIN",
            errno::ENOMEM => "ENOMEM",
            errno::EFAULT => "EFAULT",
            errno::EINVAL => "EINVAL",
            errno::ENOSYS => "ENOSYS",
            _ => "errno",
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_small_values_are_errors_and_high_addresses_are_not() {
        assert_eq!(Errno::check(-12i32 as u32), Err(Errno::ENOMEM));
        assert_eq!(Errno::check(-4095i32 as u32), Err(Errno(4095)));
        assert_eq!(Errno::check(-4096i32 as u32), Ok(0xFFFF_F000));
        assert_eq!(Errno::check(0x9000_0000), Ok(0x9000_0000));
        assert_eq!(Errno::check(0), Ok(0));
    }

    #[test]
    fn names_its_number() {
        assert_eq!(format!("{}", Errno::ECHILD), "ECHILD (10)");
        assert_eq!(format!("{}", Errno(99)), "errno (99)");
    }
}
