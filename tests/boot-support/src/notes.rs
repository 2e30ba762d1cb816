//! ELF notes (the System V ABI's note section): records of namesz, descsz
//! and type words, then the name and the descriptor, each padded to 4
//! bytes. A PVH loader finds the kernel's 32-bit entry here, in the note
//! named "Xen" of type XEN_ELFNOTE_PHYS32_ENTRY.

/// Xen's note type for the PVH entry point (`xen/include/public/elfnote.h`).
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

fn word(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

/// The descriptor of the first note in `notes` named `name` (without its
/// NUL) with type `ty`. A truncated record ends the search: nothing past
/// it can be trusted.
pub fn find<'a>(notes: &'a [u8], name: &[u8], ty: u32) -> Option<&'a [u8]> {
    let pad = |n: usize| n.checked_add(3).map(|n| n & !3);
    let mut at = 0usize;
    while at + 12 <= notes.len() {
        let namesz = word(notes, at)? as usize;
        let descsz = word(notes, at + 4)? as usize;
        let t = word(notes, at + 8)?;
        let name_at = at + 12;
        let desc_at = name_at.checked_add(pad(namesz)?)?;
        let end = desc_at.checked_add(pad(descsz)?)?;
        let this = notes.get(name_at..name_at + namesz)?;
        let desc = notes.get(desc_at..desc_at.checked_add(descsz)?)?;
        if t == ty && this.strip_suffix(&[0]).unwrap_or(this) == name {
            return Some(desc);
        }
        at = end;
    }
    None
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn note(out: &mut Vec<u8>, name: &[u8], ty: u32, desc: &[u8]) {
        out.extend((name.len() as u32 + 1).to_le_bytes());
        out.extend((desc.len() as u32).to_le_bytes());
        out.extend(ty.to_le_bytes());
        out.extend(name);
        out.push(0);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
        out.extend(desc);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    }

    #[test]
    fn finds_the_pvh_entry_among_other_notes() {
        let mut n = Vec::new();
        note(&mut n, b"GNU", 3, &[1, 2, 3, 4, 5]);
        note(&mut n, b"Xen", 6, b"linux");
        note(&mut n, b"Xen", XEN_ELFNOTE_PHYS32_ENTRY, &0x10_0040u32.to_le_bytes());
        let d = find(&n, b"Xen", XEN_ELFNOTE_PHYS32_ENTRY).unwrap();
        assert_eq!(d, &0x10_0040u32.to_le_bytes());
        assert_eq!(find(&n, b"Xen", 99), None);
        assert_eq!(find(&n, b"Xe", XEN_ELFNOTE_PHYS32_ENTRY), None);
    }

    #[test]
    fn a_truncated_or_lying_record_ends_the_search() {
        let mut n = Vec::new();
        note(&mut n, b"Xen", XEN_ELFNOTE_PHYS32_ENTRY, &[0; 4]);
        assert_eq!(find(&n[..n.len() - 1], b"Xen", XEN_ELFNOTE_PHYS32_ENTRY), None);
        n[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(find(&n, b"Xen", XEN_ELFNOTE_PHYS32_ENTRY), None);
    }
}
