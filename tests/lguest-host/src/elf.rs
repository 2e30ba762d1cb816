//! Loading the guest kernel: each ELF32 PT_LOAD segment at its physical
//! address (`p_paddr`) in guest memory, bss zeroed, as lguest's Launcher
//! did.

use crate::fatal::{fatal, Result};
use crate::guest_mem::GuestMem;

fn rd32(at: u32) -> u32 {
    // SAFETY: callers stay inside the module (checked against its end);
    // the module is identity-mapped host RAM.
    unsafe { (at as *const u32).read_unaligned() }
}

fn rd16(at: u32) -> u16 {
    // SAFETY: as above.
    unsafe { (at as *const u16).read_unaligned() }
}

pub struct Loaded {
    pub entry: u32,
    /// Guest-physical end of the highest segment.
    pub end: u32,
}

/// Loads the ELF image in host-physical `[start, end)` into `mem`.
pub fn load(start: u32, end: u32, mem: &GuestMem) -> Result<Loaded> {
    if end < start + 52 || rd32(start) != 0x464C_457F {
        return Err(fatal!("the guest kernel (module 0) is not an ELF file"));
    }
    if rd16(start + 4) & 0xFF != 1 {
        return Err(fatal!("the guest kernel is not a 32-bit ELF file"));
    }
    let phoff = rd32(start + 28);
    let phentsize = rd16(start + 42) as u32;
    let phnum = rd16(start + 44) as u32;
    if phoff.checked_add(phnum * phentsize).is_none_or(|e| start + e > end) {
        return Err(fatal!("the guest kernel's program headers run past the module"));
    }
    let mut top = 0;
    for i in 0..phnum {
        let ph = start + phoff + i * phentsize;
        if rd32(ph) != 1 {
            continue; // not PT_LOAD
        }
        let (off, paddr, filesz, memsz) = (rd32(ph + 4), rd32(ph + 12), rd32(ph + 16), rd32(ph + 20));
        if filesz > memsz || off.checked_add(filesz).is_none_or(|e| start + e > end) {
            return Err(fatal!("a guest kernel segment (offset {:#x}) runs past the module", off));
        }
        mem.copy_from_host(paddr, start + off, filesz, "a guest kernel segment")?;
        mem.fill(paddr + filesz, memsz - filesz, 0, "a guest kernel segment's bss")?;
        top = top.max(paddr + memsz);
    }
    Ok(Loaded { entry: rd32(start + 24), end: top })
}
