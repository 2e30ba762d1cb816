//! The Launcher, lying: `lie=NAME` on the host's command line makes it
//! write a boot_params that is wrong in that one way, so the matrix can see
//! the guest refuse it with a FAILURE naming the field, as issue 13 asks of
//! every boot protocol.

use lguest_host::fatal::{fatal, Result};

/// What the Launcher writes into boot_params.
pub struct ZeroPage {
    /// `e820_entries`, which may disagree with `e820.len()`.
    pub e820_entries: u8,
    /// (addr, size, type) entries of the e820 table.
    pub e820: [(u64, u64, u32); 2],
    pub e820_len: usize,
    pub hardware_subarch: u32,
    /// None: the Launcher's own command line page.
    pub cmd_line_ptr: Option<u32>,
}

impl ZeroPage {
    fn second(&mut self, entry: (u64, u64, u32)) {
        self.e820[1] = entry;
        self.e820_len = 2;
        self.e820_entries = 2;
    }
}

const RAM: u32 = 1;
const RESERVED: u32 = 2;
const SUBARCH_LGUEST: u32 = 1;
/// Guest-physical memory no guest of this host has (its most is 883 MiB).
const NOWHERE: u32 = 0x3F00_0000;

/// The zero page for guest memory of `size` bytes, lying as `lie` says
/// (None: the truth, one RAM entry covering it all).
pub fn zero_page(lie: Option<&str>, size: u32) -> Result<ZeroPage> {
    let all = (0, size as u64, RAM);
    let mut z = ZeroPage {
        e820_entries: 1,
        e820: [all, (0, 0, 0)],
        e820_len: 1,
        hardware_subarch: SUBARCH_LGUEST,
        cmd_line_ptr: None,
    };
    match lie {
        None => {}
        Some("e820-none") => z.e820_entries = 0,
        // The table holds 128.
        Some("e820-count") => z.e820_entries = 200,
        Some("e820-overlap") => z.second((size as u64 / 2, 1 << 20, RAM)),
        Some("e820-zero") => z.second((size as u64, 0, RAM)),
        Some("e820-wrap") => z.second((0xFFFF_FFFF_FFFF_F000, 0x2000, RESERVED)),
        // RAM the guest does not have: four times its memory.
        Some("e820-outside") => z.e820[0].1 = size as u64 * 4,
        Some("subarch-pc") => z.hardware_subarch = 0,
        Some("subarch-unknown") => z.hardware_subarch = 7,
        Some("cmdline-nowhere") => z.cmd_line_ptr = Some(NOWHERE),
        Some(other) => return Err(fatal!("lie={}: no such lie", other)),
    }
    Ok(z)
}
