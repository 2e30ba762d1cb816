//! What an x86-64 ELF file needs before it can run in dom0: the shared
//! libraries a program or library names (`DT_NEEDED`), the modules a
//! kernel module depends on (`depends=` in `.modinfo`).

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], off: usize) -> Option<usize> {
    usize::try_from(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?)).ok()
}

/// A section header of an ELF64 file: (type, offset, size, link).
fn sections(b: &[u8]) -> Result<Vec<(u32, usize, usize, usize)>, String> {
    if b.get(..6) != Some(b"\x7fELF\x02\x01") {
        return Err("not a little-endian ELF64 file".into());
    }
    let bad = || "truncated ELF section headers".to_string();
    let shoff = u64_at(b, 0x28).ok_or_else(bad)?;
    let (entsize, count) =
        (u16_at(b, 0x3A).ok_or_else(bad)? as usize, u16_at(b, 0x3C).ok_or_else(bad)? as usize);
    (0..count)
        .map(|i| {
            let h = shoff + i * entsize;
            Some((
                u32_at(b, h + 4)?,
                u64_at(b, h + 0x18)?,
                u64_at(b, h + 0x20)?,
                u32_at(b, h + 0x28)? as usize,
            ))
        })
        .collect::<Option<_>>()
        .ok_or_else(bad)
}

/// The NUL-terminated string at `off`.
fn c_str(b: &[u8], off: usize) -> Option<String> {
    let s = b.get(off..)?;
    let end = s.iter().position(|&c| c == 0)?;
    Some(String::from_utf8_lossy(&s[..end]).into_owned())
}

const SHT_DYNAMIC: u32 = 6;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;

/// The sonames an ELF64 program or library names in `DT_NEEDED`, in order
/// (none for a static binary).
pub fn needed(b: &[u8]) -> Result<Vec<String>, String> {
    let secs = sections(b)?;
    let mut out = Vec::new();
    for &(kind, off, size, link) in &secs {
        if kind != SHT_DYNAMIC {
            continue;
        }
        let &(_, strtab, _, _) = secs.get(link).ok_or("dynamic section links no string table")?;
        for at in (off..off + size).step_by(16) {
            let tag = u64_at(b, at).ok_or("truncated dynamic section")? as u64;
            let val = u64_at(b, at + 8).ok_or("truncated dynamic section")?;
            match tag {
                DT_NULL => break,
                DT_NEEDED => out.push(c_str(b, strtab + val).ok_or("DT_NEEDED outside its string table")?),
                _ => {}
            }
        }
    }
    Ok(out)
}

/// The modules a kernel module's `.modinfo` says it depends on
/// (`depends=a,b`), names as modinfo spells them.
pub fn module_depends(b: &[u8]) -> Vec<String> {
    // .modinfo is a run of NUL-terminated "key=value" strings.
    b.windows(9)
        .position(|w| w == b"\0depends=")
        .and_then(|i| c_str(b, i + 9))
        .map(|v| v.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 with a dynamic section naming two libraries.
    fn elf_with_needed() -> Vec<u8> {
        let mut b = vec![0u8; 0x200];
        b[..6].copy_from_slice(b"\x7fELF\x02\x01");
        // Strings at 0x100, dynamic entries at 0x140, section headers at 0x180.
        let strs = b"\0libc.so.6\0libxl.so.4\0";
        b[0x100..0x100 + strs.len()].copy_from_slice(strs);
        for (i, (tag, val)) in [(DT_NEEDED, 11u64), (5, 0), (DT_NEEDED, 1), (DT_NULL, 0)].iter().enumerate() {
            b[0x140 + 16 * i..0x148 + 16 * i].copy_from_slice(&tag.to_le_bytes());
            b[0x148 + 16 * i..0x150 + 16 * i].copy_from_slice(&val.to_le_bytes());
        }
        b[0x28..0x30].copy_from_slice(&0x180u64.to_le_bytes());
        b[0x3A..0x3C].copy_from_slice(&64u16.to_le_bytes());
        b[0x3C..0x3E].copy_from_slice(&1u16.to_le_bytes());
        b.resize(0x180 + 64 * 2, 0);
        // Section 0: SHT_DYNAMIC at 0x140, 64 bytes, linked to section 1.
        let s0 = 0x180;
        b[s0 + 4..s0 + 8].copy_from_slice(&SHT_DYNAMIC.to_le_bytes());
        b[s0 + 0x18..s0 + 0x20].copy_from_slice(&0x140u64.to_le_bytes());
        b[s0 + 0x20..s0 + 0x28].copy_from_slice(&64u64.to_le_bytes());
        b[s0 + 0x28..s0 + 0x2C].copy_from_slice(&1u32.to_le_bytes());
        // Section 1: the string table at 0x100.
        let s1 = s0 + 64;
        b[s1 + 4..s1 + 8].copy_from_slice(&3u32.to_le_bytes());
        b[s1 + 0x18..s1 + 0x20].copy_from_slice(&0x100u64.to_le_bytes());
        b[0x3C..0x3E].copy_from_slice(&2u16.to_le_bytes());
        b
    }

    #[test]
    fn needed_libraries_in_order() {
        assert_eq!(needed(&elf_with_needed()).unwrap(), ["libxl.so.4", "libc.so.6"]);
        assert!(needed(b"#!/bin/sh\n").is_err());
    }

    #[test]
    fn modinfo_depends() {
        let modinfo = b"xx\0license=GPL\0depends=xen-evtchn,foo\0vermagic=6.1\0";
        assert_eq!(module_depends(modinfo), ["xen-evtchn", "foo"]);
        assert!(module_depends(b"\0license=GPL\0depends=\0name=x\0").is_empty());
        assert!(module_depends(b"\0license=GPL\0").is_empty());
    }
}
