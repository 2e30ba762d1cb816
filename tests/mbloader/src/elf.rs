//! Loading an ELF32 executable's PT_LOAD segments at their physical
//! addresses (paging is off, so physical is all there is).

fn rd32(at: u32) -> u32 {
    // SAFETY: callers stay inside the module (checked against its end).
    unsafe { (at as *const u32).read_unaligned() }
}

fn rd16(at: u32) -> u16 {
    // SAFETY: as above.
    unsafe { (at as *const u16).read_unaligned() }
}

/// Loads the ELF in `[start, end)`, returns its entry point.
///
/// # Safety
/// `[start, end)` must be readable, and every segment's destination free
/// memory that does not overlap the module or this loader.
pub unsafe fn load(start: u32, end: u32) -> Result<u32, &'static str> {
    if end < start + 52 || rd32(start) != 0x464C_457F {
        return Err("module is not an ELF file");
    }
    let phoff = rd32(start + 28);
    let phentsize = rd16(start + 42) as u32;
    let phnum = rd16(start + 44) as u32;
    if start + phoff + phnum * phentsize > end {
        return Err("ELF program headers run past the module");
    }
    for i in 0..phnum {
        let ph = start + phoff + i * phentsize;
        if rd32(ph) != 1 {
            continue; // not PT_LOAD
        }
        let (off, paddr, filesz, memsz) = (rd32(ph + 4), rd32(ph + 12), rd32(ph + 16), rd32(ph + 20));
        if start + off + filesz > end {
            return Err("ELF segment runs past the module");
        }
        // SAFETY: forwarded to the caller.
        unsafe {
            core::ptr::copy((start + off) as *const u8, paddr as *mut u8, filesz as usize);
            core::ptr::write_bytes((paddr + filesz) as *mut u8, 0, (memsz - filesz) as usize);
        }
    }
    Ok(rd32(start + 24))
}
