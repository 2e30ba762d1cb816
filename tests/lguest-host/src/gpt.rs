//! Reading the guest's own pagetables (2-level), the way the MMU would if
//! it were allowed to.
//!
//! The host walks them to fill a shadow entry on a fault, to push a trap
//! frame onto the guest's stack, to read the instruction at the guest's
//! eip, and to audit the shadows at the end. An entry's permission is the
//! intersection of its pgd and pte entries' RW and USER bits.

use crate::fatal::{fatal, Result};
use crate::guest_mem::GuestMem;

pub const P: u32 = 0x1;
pub const RW: u32 = 0x2;
pub const USER: u32 = 0x4;
pub const ACCESSED: u32 = 0x20;
pub const DIRTY: u32 = 0x40;
pub const PSE: u32 = 0x80;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Walk {
    /// The pgd or pte entry is not present.
    Unmapped,
    /// A 4 MiB pgd entry: lguest offers no large pages.
    Large,
    /// Mapped: guest frame number and effective permissions (P|RW|USER).
    Mapped { frame: u32, perm: u32 },
}

/// The guest's pgd entry for `va` in the pgdir at `gpgdir`.
pub fn pgd_entry(mem: &GuestMem, gpgdir: u32, va: u32) -> Result<u32> {
    mem.read_u32(gpgdir + (va >> 22) * 4, "guest pgd entry")
}

pub fn walk(mem: &GuestMem, gpgdir: u32, va: u32) -> Result<Walk> {
    let pde = pgd_entry(mem, gpgdir, va)?;
    if pde & P == 0 {
        return Ok(Walk::Unmapped);
    }
    if pde & PSE != 0 {
        return Ok(Walk::Large);
    }
    let table = pde & !0xFFF;
    if !mem.contains(table, 4096) {
        return Err(fatal!(
            "guest pgd entry {:#x} (for {:#010x}) names a frame outside guest memory",
            pde,
            va
        ));
    }
    let pte = mem.read_u32(table + ((va >> 12) & 1023) * 4, "guest pte")?;
    if pte & P == 0 {
        return Ok(Walk::Unmapped);
    }
    Ok(Walk::Mapped { frame: pte >> 12, perm: P | (pde & pte & (RW | USER)) })
}

/// The guest-physical address behind `va` for a supervisor access (ring 1),
/// or None if the guest's tables do not allow it.
pub fn translate(mem: &GuestMem, gpgdir: u32, va: u32, write: bool) -> Result<Option<u32>> {
    match walk(mem, gpgdir, va)? {
        Walk::Mapped { frame, perm } if !write || perm & RW != 0 => {
            let gpa = (frame << 12) | (va & 0xFFF);
            Ok(mem.contains(gpa, 1).then_some(gpa))
        }
        _ => Ok(None),
    }
}
