//! Loading the guest kernel: each ELF32 PT_LOAD segment at its physical
//! address (`p_paddr`) in guest memory, bss zeroed, as lguest's Launcher
//! did.

use boot_support::elf::Elf;

use lguest_host::fatal::{fatal, Result};
use lguest_host::guest_mem::GuestMem;

pub struct Loaded {
    pub entry: u32,
    /// Guest-physical end of the highest segment.
    pub end: u32,
}

/// Loads the ELF image in host-physical `[start, end)` into `mem`.
pub fn load(start: u32, end: u32, mem: &GuestMem) -> Result<Loaded> {
    // SAFETY: QEMU loaded module 0 at [start, end), identity-mapped.
    let elf =
        unsafe { Elf::parse(start, end) }.map_err(|why| fatal!("the guest kernel (module 0): {}", why))?;
    let mut top = 0;
    for s in elf.segments() {
        mem.copy_from_host(s.paddr, s.src, s.filesz, "a guest kernel segment")?;
        mem.fill(s.paddr + s.filesz, s.memsz - s.filesz, 0, "a guest kernel segment's bss")?;
        top = top.max(s.paddr + s.memsz);
    }
    Ok(Loaded { entry: elf.entry, end: top })
}
