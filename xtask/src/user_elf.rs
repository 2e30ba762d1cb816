//! What the kernel may assume of a user program it embeds, checked on the
//! built file before the kernel is built around it:
//!
//! - an ELF32, little-endian, i386 executable (ET_EXEC: linked at fixed
//!   addresses, not position-independent);
//! - static: no PT_INTERP, no PT_DYNAMIC, no PT_TLS, and no relocation
//!   sections (SHT_REL, SHT_RELA, SHT_RELR), so there is nothing for the
//!   kernel to resolve or apply: loading is copying the PT_LOAD segments;
//! - the first PT_LOAD at LINK_BASE (0x08048000, `user/programs/linker.ld`)
//!   and every one below `user_abi::MMAP_BASE`, where mmap starts; each
//!   with its file offset congruent to its address modulo the page size,
//!   its file bytes inside the file, no more file bytes than memory, no
//!   page shared with another segment (every page has one set of
//!   permissions), and none both writable and executable;
//! - the entry inside the file bytes of an executable PT_LOAD.

use user_abi::MMAP_BASE;

pub const LINK_BASE: u32 = 0x0804_8000;
const PAGE: u32 = 4096;

const ET_EXEC: u16 = 2;
const EM_386: u16 = 3;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_TLS: u32 = 7;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const SHT_RELA: u32 = 4;
const SHT_DYNAMIC: u32 = 6;
const SHT_REL: u32 = 9;
const SHT_RELR: u32 = 19;

struct Segment {
    kind: u32,
    offset: u32,
    vaddr: u32,
    filesz: u32,
    memsz: u32,
    flags: u32,
}

fn u16_at(b: &[u8], off: usize) -> Result<u16, String> {
    b.get(off..off + 2).map(|s| u16::from_le_bytes(s.try_into().unwrap())).ok_or_else(|| truncated(off))
}

fn u32_at(b: &[u8], off: usize) -> Result<u32, String> {
    b.get(off..off + 4).map(|s| u32::from_le_bytes(s.try_into().unwrap())).ok_or_else(|| truncated(off))
}

fn truncated(off: usize) -> String {
    format!("truncated: nothing at offset {off:#x}")
}

/// Checks `elf` (see the module doc); the entry address if it passes.
pub fn check(elf: &[u8]) -> Result<u32, String> {
    if elf.get(..7) != Some(b"\x7fELF\x01\x01\x01") {
        return Err("not a little-endian ELF32 file of version 1".into());
    }
    let (kind, machine) = (u16_at(elf, 0x10)?, u16_at(elf, 0x12)?);
    if kind != ET_EXEC {
        return Err(format!("e_type {kind}, not ET_EXEC: not a fixed-address executable"));
    }
    if machine != EM_386 {
        return Err(format!("e_machine {machine}, not EM_386"));
    }
    let entry = u32_at(elf, 0x18)?;
    let segments = program_headers(elf)?;
    check_segments(elf, &segments)?;
    if !segments.iter().any(|s| s.kind == PT_LOAD && s.flags & PF_X != 0 && within(entry, s.vaddr, s.filesz))
    {
        return Err(format!("entry {entry:#x} is not in the file bytes of an executable PT_LOAD"));
    }
    check_sections(elf)?;
    Ok(entry)
}

fn program_headers(elf: &[u8]) -> Result<Vec<Segment>, String> {
    let (phoff, phentsize, phnum) =
        (u32_at(elf, 0x1C)? as usize, u16_at(elf, 0x2A)? as usize, u16_at(elf, 0x2C)?);
    if phentsize < 32 {
        return Err(format!("e_phentsize {phentsize}, smaller than an ELF32 program header"));
    }
    (0..phnum as usize)
        .map(|i| {
            let h = phoff + i * phentsize;
            Ok(Segment {
                kind: u32_at(elf, h)?,
                offset: u32_at(elf, h + 4)?,
                vaddr: u32_at(elf, h + 8)?,
                filesz: u32_at(elf, h + 16)?,
                memsz: u32_at(elf, h + 20)?,
                flags: u32_at(elf, h + 24)?,
            })
        })
        .collect()
}

fn check_segments(elf: &[u8], segments: &[Segment]) -> Result<(), String> {
    let mut loads: Vec<&Segment> = Vec::new();
    for s in segments {
        let what = match s.kind {
            PT_INTERP => Some("PT_INTERP (it wants a dynamic loader)"),
            PT_DYNAMIC => Some("PT_DYNAMIC (it is not static)"),
            PT_TLS => Some("PT_TLS (thread-local storage the kernel does not set up)"),
            _ => None,
        };
        if let Some(what) = what {
            return Err(format!("a {what}"));
        }
        if s.flags & PF_W != 0 && s.flags & PF_X != 0 {
            return Err(format!("the segment at {:#x} is both writable and executable", s.vaddr));
        }
        if s.kind != PT_LOAD {
            continue;
        }
        let at = format!("PT_LOAD at {:#x}", s.vaddr);
        let end = s.vaddr.checked_add(s.memsz).filter(|&e| e <= MMAP_BASE);
        if s.vaddr < LINK_BASE || end.is_none() {
            return Err(format!("{at} (+{:#x}) is outside {LINK_BASE:#x}..{MMAP_BASE:#x}", s.memsz));
        }
        if s.offset % PAGE != s.vaddr % PAGE {
            return Err(format!("{at}: file offset {:#x} is not congruent to it modulo the page", s.offset));
        }
        if s.filesz > s.memsz {
            return Err(format!("{at}: {:#x} file bytes but only {:#x} in memory", s.filesz, s.memsz));
        }
        if (s.offset as usize).checked_add(s.filesz as usize).is_none_or(|e| e > elf.len()) {
            return Err(format!("{at}: its file bytes run past the end of the file"));
        }
        loads.push(s);
    }
    loads.sort_by_key(|s| s.vaddr);
    match loads.first() {
        None => return Err("no PT_LOAD segment".into()),
        Some(first) if first.vaddr != LINK_BASE => {
            return Err(format!("the first PT_LOAD is at {:#x}, not {LINK_BASE:#x}", first.vaddr))
        }
        Some(_) => {}
    }
    for pair in loads.windows(2) {
        let last_page = (pair[0].vaddr + pair[0].memsz).div_ceil(PAGE);
        if pair[1].vaddr / PAGE < last_page {
            return Err(format!("PT_LOADs at {:#x} and {:#x} share a page", pair[0].vaddr, pair[1].vaddr));
        }
    }
    Ok(())
}

fn within(addr: u32, start: u32, len: u32) -> bool {
    addr >= start && addr - start < len
}

/// No section the kernel would have to act on: relocations, or a dynamic
/// table. (A file without section headers has none to show.)
fn check_sections(elf: &[u8]) -> Result<(), String> {
    let (shoff, shentsize, shnum) =
        (u32_at(elf, 0x20)? as usize, u16_at(elf, 0x2E)? as usize, u16_at(elf, 0x30)?);
    for i in 0..shnum as usize {
        let what = match u32_at(elf, shoff + i * shentsize + 4)? {
            SHT_REL => "SHT_REL",
            SHT_RELA => "SHT_RELA",
            SHT_RELR => "SHT_RELR",
            SHT_DYNAMIC => "SHT_DYNAMIC",
            _ => continue,
        };
        return Err(format!("section {i} is {what}: relocations the kernel would have to apply"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (type, offset, vaddr, filesz, memsz, flags)
    type Ph = (u32, u32, u32, u32, u32, u32);

    const TEXT: Ph = (PT_LOAD, 0, LINK_BASE, 0x2000, 0x2000, 5);
    const RODATA: Ph = (PT_LOAD, 0x2000, LINK_BASE + 0x2000, 0x100, 0x100, 4);
    const DATA: Ph = (PT_LOAD, 0x3000, LINK_BASE + 0x3000, 0x10, 0x1000, 6);

    /// A file of 0x4000 bytes with these program headers and section
    /// types.
    fn elf(kind: u16, entry: u32, phdrs: &[Ph], sections: &[u32]) -> Vec<u8> {
        let mut b = vec![0u8; 0x4000];
        b[..7].copy_from_slice(b"\x7fELF\x01\x01\x01");
        b[0x10..0x12].copy_from_slice(&kind.to_le_bytes());
        b[0x12..0x14].copy_from_slice(&EM_386.to_le_bytes());
        b[0x18..0x1C].copy_from_slice(&entry.to_le_bytes());
        b[0x1C..0x20].copy_from_slice(&0x34u32.to_le_bytes());
        b[0x2A..0x2C].copy_from_slice(&32u16.to_le_bytes());
        b[0x2C..0x2E].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for (i, p) in phdrs.iter().enumerate() {
            let h = 0x34 + i * 32;
            for (j, v) in [p.0, p.1, p.2, p.2, p.3, p.4, p.5, PAGE].iter().enumerate() {
                b[h + j * 4..h + j * 4 + 4].copy_from_slice(&v.to_le_bytes());
            }
        }
        let shoff = 0x200;
        b[0x20..0x24].copy_from_slice(&(shoff as u32).to_le_bytes());
        b[0x2E..0x30].copy_from_slice(&40u16.to_le_bytes());
        b[0x30..0x32].copy_from_slice(&(sections.len() as u16).to_le_bytes());
        for (i, t) in sections.iter().enumerate() {
            b[shoff + i * 40 + 4..shoff + i * 40 + 8].copy_from_slice(&t.to_le_bytes());
        }
        b
    }

    fn good() -> Vec<u8> {
        elf(ET_EXEC, LINK_BASE + 0xC0, &[TEXT, RODATA, DATA], &[0, 1, 2, 3])
    }

    fn fails(b: &[u8], why: &str) {
        let e = check(b).expect_err("accepted");
        assert!(e.contains(why), "{e:?} does not say {why:?}");
    }

    #[test]
    fn a_static_program_at_the_link_base_passes() {
        assert_eq!(check(&good()), Ok(LINK_BASE + 0xC0));
    }

    #[test]
    fn what_is_not_an_i386_executable_fails() {
        let mut b = good();
        b[4] = 2;
        fails(&b, "ELF32");
        fails(&elf(3, LINK_BASE + 0xC0, &[TEXT], &[]), "ET_EXEC");
        let mut b = good();
        b[0x12] = 62;
        fails(&b, "EM_386");
        fails(&good()[..0x30], "truncated");
    }

    #[test]
    fn anything_dynamic_fails() {
        let interp = (PT_INTERP, 0x100, 0, 0x10, 0x10, 4);
        fails(&elf(ET_EXEC, LINK_BASE + 0xC0, &[TEXT, interp], &[]), "PT_INTERP");
        let dynamic = (PT_DYNAMIC, 0x100, LINK_BASE + 0x100, 0x10, 0x10, 4);
        fails(&elf(ET_EXEC, LINK_BASE + 0xC0, &[TEXT, dynamic], &[]), "PT_DYNAMIC");
        for (t, name) in [(SHT_REL, "SHT_REL"), (SHT_RELA, "SHT_RELA"), (SHT_RELR, "SHT_RELR")] {
            fails(&elf(ET_EXEC, LINK_BASE + 0xC0, &[TEXT], &[0, 1, t]), name);
        }
    }

    #[test]
    fn segments_must_sit_where_the_kernel_loads_them() {
        let low = (PT_LOAD, 0, 0x0040_0000, 0x100, 0x100, 5);
        fails(&elf(ET_EXEC, 0x0040_0000, &[low], &[]), "outside");
        let high = (PT_LOAD, 0x3000, MMAP_BASE - 0x1000, 0x10, 0x2000, 6);
        fails(&elf(ET_EXEC, LINK_BASE, &[TEXT, high], &[]), "outside");
        let later = (PT_LOAD, 0x1000, LINK_BASE + 0x1000, 0x100, 0x100, 5);
        fails(&elf(ET_EXEC, LINK_BASE + 0x1000, &[later], &[]), "first PT_LOAD");
        let skewed = (PT_LOAD, 0x2100, LINK_BASE + 0x2000, 0x10, 0x10, 4);
        fails(&elf(ET_EXEC, LINK_BASE, &[TEXT, skewed], &[]), "congruent");
        let sharing = (PT_LOAD, 0x1F00, LINK_BASE + 0x1F00, 0x10, 0x10, 4);
        fails(&elf(ET_EXEC, LINK_BASE, &[TEXT, sharing], &[]), "share a page");
        let past_end = (PT_LOAD, 0x3000, LINK_BASE + 0x3000, 0x2000, 0x2000, 4);
        fails(&elf(ET_EXEC, LINK_BASE, &[TEXT, past_end], &[]), "past the end");
        let short = (PT_LOAD, 0x3000, LINK_BASE + 0x3000, 0x20, 0x10, 6);
        fails(&elf(ET_EXEC, LINK_BASE, &[TEXT, short], &[]), "file bytes but only");
        fails(&elf(ET_EXEC, LINK_BASE, &[], &[]), "no PT_LOAD");
    }

    #[test]
    fn writable_code_fails() {
        let wx = (PT_LOAD, 0x3000, LINK_BASE + 0x3000, 0x10, 0x10, 7);
        fails(&elf(ET_EXEC, LINK_BASE, &[TEXT, wx], &[]), "writable and executable");
    }

    #[test]
    fn the_entry_must_be_in_code() {
        fails(&elf(ET_EXEC, LINK_BASE + 0x2010, &[TEXT, RODATA], &[]), "entry");
        fails(&elf(ET_EXEC, 0, &[TEXT], &[]), "entry");
        fails(&elf(ET_EXEC, LINK_BASE + 0x2000, &[TEXT], &[]), "entry");
    }
}
