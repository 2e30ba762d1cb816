//! Xen PV boot: `struct start_info` (Xen's public `xen.h`), i386 layout.
//!
//! Xen's domain builder (the dom0 builder, or libxenguest under `xl
//! create`) enters a PV kernel at its ELF notes' ENTRY in ring 1, paging
//! on, with esi pointing at this page. It is a boot protocol like
//! multiboot: the command line in it is a detection input (`hypervisor=`),
//! so it is parsed before any backend is chosen; the rest is for the Xen
//! backend.
//!
//! ```text
//!    0 magic[32]  "xen-3.0-x86_32p"        60 pt_base       (va of the L3)
//!   32 nr_pages                              64 nr_pt_frames
//!   36 shared_info  (machine address)        68 mfn_list      (va of the p2m)
//!   40 flags        (SIF_*)                  72 mod_start, 76 mod_len
//!   44 store_mfn, 48 store_evtchn            80 cmd_line[1024]
//!   52 console: domU {mfn, evtchn}         1104 first_p2m_pfn, 1108 nr_p2m_frames
//!               dom0 {info_off, info_size}  1112 = size
//! ```

use crate::cmdline::CmdLine;

/// "xen-3.0-x86_32p": a 32-bit guest with PAE pagetables.
pub const MAGIC: &[u8] = b"xen-3.0-x86_32p";
pub const SIZE: usize = 1112;
pub const MAGIC_LEN: usize = 32;

const OFF_NR_PAGES: usize = 32;
const OFF_SHARED_INFO: usize = 36;
const OFF_FLAGS: usize = 40;
const OFF_STORE_MFN: usize = 44;
const OFF_STORE_EVTCHN: usize = 48;
const OFF_CONSOLE_MFN: usize = 52;
const OFF_CONSOLE_EVTCHN: usize = 56;
const OFF_PT_BASE: usize = 60;
const OFF_NR_PT_FRAMES: usize = 64;
const OFF_MFN_LIST: usize = 68;
const OFF_MOD_START: usize = 72;
const OFF_MOD_LEN: usize = 76;
const OFF_CMD_LINE: usize = 80;
pub const CMD_LINE_SIZE: usize = 1024;

/// The domain is the initial domain (dom0).
pub const SIF_INITDOMAIN: u32 = 1 << 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartInfo {
    /// Pages the domain owns: its pseudo-physical memory is pfn 0..nr_pages.
    pub nr_pages: u32,
    /// Machine address of the shared info page (not mapped at entry).
    pub shared_info: u32,
    pub flags: u32,
    pub store_mfn: u32,
    pub store_evtchn: u32,
    /// A domU's console ring (machine frame) and its event channel; for
    /// dom0 these words are `info_off`/`info_size` instead.
    pub console_mfn: u32,
    pub console_evtchn: u32,
    /// Virtual address of the boot pagetable's top level (the PAE L3).
    pub pt_base: u32,
    pub nr_pt_frames: u32,
    /// Virtual address of the p2m table: one u32 machine frame per pfn.
    pub mfn_list: u32,
    pub mod_start: u32,
    pub mod_len: u32,
}

/// What is wrong with a start_info page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartInfoError {
    /// Fewer bytes than the structure.
    Short { len: usize },
    /// Not "xen-3.0-x86_32p": a 64-bit or non-PAE guest's start_info.
    Magic,
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Does this magic say "32-bit PAE PV guest"?
pub fn magic_ok(magic: &[u8]) -> bool {
    magic.starts_with(MAGIC)
}

impl StartInfo {
    /// Decodes a start_info page (at least `SIZE` bytes) and its command
    /// line.
    pub fn parse(b: &[u8]) -> Result<(StartInfo, CmdLine), StartInfoError> {
        if b.len() < SIZE {
            return Err(StartInfoError::Short { len: b.len() });
        }
        if !magic_ok(&b[..MAGIC_LEN]) {
            return Err(StartInfoError::Magic);
        }
        let si = StartInfo {
            nr_pages: u32_at(b, OFF_NR_PAGES),
            shared_info: u32_at(b, OFF_SHARED_INFO),
            flags: u32_at(b, OFF_FLAGS),
            store_mfn: u32_at(b, OFF_STORE_MFN),
            store_evtchn: u32_at(b, OFF_STORE_EVTCHN),
            console_mfn: u32_at(b, OFF_CONSOLE_MFN),
            console_evtchn: u32_at(b, OFF_CONSOLE_EVTCHN),
            pt_base: u32_at(b, OFF_PT_BASE),
            nr_pt_frames: u32_at(b, OFF_NR_PT_FRAMES),
            mfn_list: u32_at(b, OFF_MFN_LIST),
            mod_start: u32_at(b, OFF_MOD_START),
            mod_len: u32_at(b, OFF_MOD_LEN),
        };
        let cmdline = CmdLine::from_bytes(&b[OFF_CMD_LINE..OFF_CMD_LINE + CMD_LINE_SIZE]);
        Ok((si, cmdline))
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
        b[52..56].copy_from_slice(&0x1234u32.to_le_bytes());
        b[56..60].copy_from_slice(&2u32.to_le_bytes());
        b[60..64].copy_from_slice(&0xC032_5000u32.to_le_bytes());
        b[64..68].copy_from_slice(&7u32.to_le_bytes());
        b[68..72].copy_from_slice(&0xC031_0000u32.to_le_bytes());
        b[80..90].copy_from_slice(b"loglvl=all");
        let (si, cmd) = StartInfo::parse(&b).unwrap();
        assert_eq!(si.nr_pages, 8192);
        assert!(si.is_dom0());
        assert_eq!((si.console_mfn, si.console_evtchn), (0x1234, 2));
        assert_eq!(si.pt_base, 0xC032_5000);
        assert_eq!(si.nr_pt_frames, 7);
        assert_eq!(si.mfn_list, 0xC031_0000);
        assert_eq!(cmd.as_str(), "loglvl=all");
        b[14] = b'\0';
        assert_eq!(StartInfo::parse(&b).err(), Some(StartInfoError::Magic));
        assert_eq!(StartInfo::parse(&b[..100]).err(), Some(StartInfoError::Short { len: 100 }));
    }

    #[test]
    fn a_command_line_filling_the_field_is_cut_and_says_so() {
        let mut b = [b'a'; SIZE];
        b[..15].copy_from_slice(MAGIC);
        let (_, cmd) = StartInfo::parse(&b).unwrap();
        assert!(cmd.truncated);
    }
}
