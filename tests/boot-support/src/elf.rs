//! An ELF32 executable in memory (a multiboot module): its entry point and
//! PT_LOAD segments, checked against the module's bounds. Where to copy
//! them is the loader's business.

fn rd32(at: u32) -> u32 {
    // SAFETY: callers stay inside the module (checked against its end),
    // which the loaders reach at its physical address.
    unsafe { (at as *const u32).read_unaligned() }
}

fn rd16(at: u32) -> u16 {
    // SAFETY: as above.
    unsafe { (at as *const u16).read_unaligned() }
}

pub struct Elf {
    start: u32,
    phoff: u32,
    phentsize: u32,
    phnum: u32,
    /// Bytes in the module.
    len: u32,
    pub entry: u32,
}

/// One PT_LOAD segment: `filesz` bytes at `src` (in the module) go to
/// physical `paddr`, followed by `memsz - filesz` zero bytes.
#[derive(Clone, Copy, Debug)]
pub struct Segment {
    pub paddr: u32,
    pub src: u32,
    pub filesz: u32,
    pub memsz: u32,
}

impl Elf {
    /// # Safety
    /// `[start, end)` must be readable memory holding the module.
    pub unsafe fn parse(start: u32, end: u32) -> Result<Elf, &'static str> {
        if end < start + 52 || rd32(start) != 0x464C_457F {
            return Err("the module is not an ELF file");
        }
        if rd16(start + 4) & 0xFF != 1 {
            return Err("the module is not a 32-bit ELF file");
        }
        let e = Elf {
            start,
            phoff: rd32(start + 28),
            phentsize: rd16(start + 42) as u32,
            phnum: rd16(start + 44) as u32,
            len: end - start,
            entry: rd32(start + 24),
        };
        if e.phoff.checked_add(e.phnum * e.phentsize).is_none_or(|x| start + x > end) {
            return Err("the ELF program headers run past the module");
        }
        for s in e.segments() {
            if s.filesz > s.memsz || s.src as u64 + s.filesz as u64 > end as u64 {
                return Err("an ELF segment runs past the module");
            }
        }
        Ok(e)
    }

    /// The descriptor of note `name`/`ty` in a PT_NOTE segment, as bytes of
    /// the module.
    pub fn note(&self, name: &[u8], ty: u32) -> Option<&'static [u8]> {
        (0..self.phnum)
            .map(|i| self.start + self.phoff + i * self.phentsize)
            .filter(|&ph| rd32(ph) == 4)
            .find_map(|ph| {
                let (off, size) = (rd32(ph + 4), rd32(ph + 16));
                if off.checked_add(size).is_none_or(|e| e > self.len) {
                    return None;
                }
                // SAFETY: the segment lies inside the module (checked just
                // above), which stays in place while the loader runs.
                let notes =
                    unsafe { core::slice::from_raw_parts((self.start + off) as *const u8, size as usize) };
                crate::notes::find(notes, name, ty)
            })
    }

    /// The PT_LOAD segments, in file order.
    pub fn segments(&self) -> impl Iterator<Item = Segment> + '_ {
        (0..self.phnum).map(|i| self.start + self.phoff + i * self.phentsize).filter(|&ph| rd32(ph) == 1).map(
            |ph| Segment {
                paddr: rd32(ph + 12),
                src: self.start.wrapping_add(rd32(ph + 4)),
                filesz: rd32(ph + 16),
                memsz: rd32(ph + 20),
            },
        )
    }
}
