//! `struct start_info` (xen.h), i386 layout: what Xen tells a PV kernel at
//! entry (esi points at it).

use paravirt::cmdline::CmdLine;

/// "xen-3.0-x86_32p": a 32-bit guest with PAE pagetables.
pub const MAGIC: &[u8] = b"xen-3.0-x86_32p";
pub const SIZE: usize = 1112;

pub const SIF_PRIVILEGED: u32 = 1 << 0;
pub const SIF_INITDOMAIN: u32 = 1 << 1;

#[derive(Clone, Copy, Debug)]
pub struct StartInfo {
    /// Pages the domain owns: its pseudo-physical memory is pfn 0..nr_pages.
    pub nr_pages: u32,
    /// Machine address of the shared info page (not mapped at entry).
    pub shared_info: u32,
    pub flags: u32,
    /// Virtual address of the boot pagetable's top level (the PAE L3).
    pub pt_base: u32,
    pub nr_pt_frames: u32,
    /// Virtual address of the p2m table: one u32 machine frame per pfn.
    pub mfn_list: u32,
    pub mod_start: u32,
    pub mod_len: u32,
    pub cmdline: CmdLine,
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

impl StartInfo {
    /// Decodes the page's first `SIZE` bytes; None if the magic is wrong.
    pub fn parse(b: &[u8; SIZE]) -> Option<StartInfo> {
        if !b.starts_with(MAGIC) {
            return None;
        }
        Some(StartInfo {
            nr_pages: u32_at(b, 32),
            shared_info: u32_at(b, 36),
            flags: u32_at(b, 40),
            pt_base: u32_at(b, 60),
            nr_pt_frames: u32_at(b, 64),
            mfn_list: u32_at(b, 68),
            mod_start: u32_at(b, 72),
            mod_len: u32_at(b, 76),
            cmdline: CmdLine::from_bytes(&b[80..80 + 1024]),
        })
    }

    pub fn is_dom0(&self) -> bool {
        self.flags & SIF_INITDOMAIN != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_i386_layout() {
        let mut b = [0u8; SIZE];
        b[..15].copy_from_slice(MAGIC);
        b[32..36].copy_from_slice(&8192u32.to_le_bytes());
        b[40..44].copy_from_slice(&3u32.to_le_bytes());
        b[60..64].copy_from_slice(&0xC032_5000u32.to_le_bytes());
        b[64..68].copy_from_slice(&7u32.to_le_bytes());
        b[68..72].copy_from_slice(&0xC031_0000u32.to_le_bytes());
        b[80..90].copy_from_slice(b"loglvl=all");
        let si = StartInfo::parse(&b).unwrap();
        assert_eq!(si.nr_pages, 8192);
        assert!(si.is_dom0());
        assert_eq!(si.pt_base, 0xC032_5000);
        assert_eq!(si.nr_pt_frames, 7);
        assert_eq!(si.mfn_list, 0xC031_0000);
        assert_eq!(si.cmdline.as_str(), "loglvl=all");
        b[14] = b'\0';
        assert!(StartInfo::parse(&b).is_none());
    }
}
