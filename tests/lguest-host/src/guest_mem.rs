//! Guest-physical memory: one contiguous block of host RAM.
//!
//! Guest-physical address 0 is host-physical `base` ([`HostPhys`] turns
//! that into a pointer). Every access is bounds-checked: guest-physical
//! addresses come from the guest (hypercall arguments, pagetable entries)
//! and a bad one must stop the guest, not corrupt the host.

use crate::fatal::{fatal, Result};
use crate::phys::HostPhys;

#[derive(Clone, Copy, Debug)]
pub struct GuestMem {
    /// Host-physical address of guest-physical 0.
    pub base: u32,
    /// Bytes.
    pub size: u32,
    pub phys: HostPhys,
}

impl GuestMem {
    pub fn pages(&self) -> u32 {
        self.size >> 12
    }

    pub fn contains(&self, gpa: u32, len: u32) -> bool {
        gpa.checked_add(len).is_some_and(|end| end <= self.size)
    }

    fn check(&self, gpa: u32, len: u32, what: &str) -> Result {
        if self.contains(gpa, len) {
            Ok(())
        } else {
            Err(fatal!(
                "{} at guest-physical {:#x} is outside guest memory ({} MiB)",
                what,
                gpa,
                self.size >> 20
            ))
        }
    }

    fn ptr(&self, gpa: u32) -> *mut u8 {
        self.phys.ptr(self.base + gpa)
    }

    pub fn read_u32(&self, gpa: u32, what: &str) -> Result<u32> {
        self.check(gpa, 4, what)?;
        // SAFETY: inside guest memory (checked), which HostPhys maps;
        // unaligned reads are fine on x86.
        Ok(unsafe { (self.ptr(gpa) as *const u32).read_unaligned() })
    }

    pub fn write_u32(&self, gpa: u32, v: u32, what: &str) -> Result {
        self.check(gpa, 4, what)?;
        // SAFETY: as for read_u32; guest memory is not host memory.
        unsafe { (self.ptr(gpa) as *mut u32).write_unaligned(v) };
        Ok(())
    }

    pub fn read_u8(&self, gpa: u32, what: &str) -> Result<u8> {
        self.check(gpa, 1, what)?;
        // SAFETY: as for read_u32.
        Ok(unsafe { self.ptr(gpa).read() })
    }

    pub fn write_u8(&self, gpa: u32, v: u8, what: &str) -> Result {
        self.check(gpa, 1, what)?;
        // SAFETY: as for write_u32.
        unsafe { self.ptr(gpa).write(v) };
        Ok(())
    }

    pub fn write_bytes(&self, gpa: u32, bytes: &[u8], what: &str) -> Result {
        self.check(gpa, bytes.len() as u32, what)?;
        // SAFETY: the destination range is inside guest memory; the source
        // is host memory, so they do not overlap.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr(gpa), bytes.len()) };
        Ok(())
    }

    /// Copies `len` bytes from host-physical `src` (the kernel module).
    pub fn copy_from_host(&self, gpa: u32, src: u32, len: u32, what: &str) -> Result {
        self.check(gpa, len, what)?;
        // SAFETY: the destination is inside guest memory; the caller checked
        // that the source lies in the module, which is below the guest block
        // and mapped like it.
        unsafe { core::ptr::copy_nonoverlapping(self.phys.ptr(src), self.ptr(gpa), len as usize) };
        Ok(())
    }

    pub fn fill(&self, gpa: u32, len: u32, v: u8, what: &str) -> Result {
        self.check(gpa, len, what)?;
        // SAFETY: inside guest memory.
        unsafe { core::ptr::write_bytes(self.ptr(gpa), v, len as usize) };
        Ok(())
    }

    /// Calls `f` for each byte of the NUL-terminated string at `gpa`, at
    /// most `max` bytes. Returns the length.
    pub fn cstr(&self, gpa: u32, max: u32, what: &str, mut f: impl FnMut(u8)) -> Result<u32> {
        for n in 0..max {
            let b = self.read_u8(gpa.wrapping_add(n), what)?;
            if b == 0 {
                return Ok(n);
            }
            f(b);
        }
        Err(fatal!("{} at guest-physical {:#x} is not NUL-terminated within {} bytes", what, gpa, max))
    }
}
