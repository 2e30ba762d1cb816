//! The Launcher's part: what lguest's user-space `lguest` program did
//! before the guest's first instruction.
//!
//! - the kernel ELF loaded at its physical addresses;
//! - `boot_params` at guest-physical 0 (the Linux boot protocol's "zero
//!   page"): setup header version 2.07, `hardware_subarch = 1` (lguest),
//!   KEEP_SEGMENTS, one e820 entry covering all guest memory, and the
//!   command line at guest-physical 4096;
//! - a linear pagetable at the top of guest memory (pte pages, then the
//!   pgdir): every page mapped at 0 and at PAGE_OFFSET through the same pte
//!   pages, flags 0x7 (present, writable, user). The guest starts on it
//!   with paging on and jumps to its high address itself.
//! - the registers: ring-1 code and data segments, interrupts enabled,
//!   esi = 0 (boot_params), eip = the ELF entry.

use arch_i386::layout::PAGE_OFFSET;
use paravirt::bootparams::{
    HEADER_MAGIC, KEEP_SEGMENTS, OFF_CMD_LINE_PTR, OFF_E820_ENTRIES, OFF_E820_TABLE, OFF_HARDWARE_SUBARCH,
    OFF_HEADER, OFF_LOADFLAGS, OFF_VERSION,
};

use lguest_host::fatal::{fatal, Result};
use lguest_host::guest_mem::GuestMem;
use lguest_host::layout::{GuestRegs, GUEST_CS, GUEST_DS};

use crate::elf;
use crate::lie::{self, ZeroPage};

const CMDLINE: u32 = 4096;
const CMDLINE_MAX: u32 = 4096;
/// The Launcher's pte flags: present, writable, user.
const LINEAR: u32 = 0x7;
/// addr (u64), size (u64), type (u32), packed.
const E820_ENTRY: u32 = 20;
/// eflags: IF and the always-one bit.
const EFLAGS: u32 = 0x202;

pub struct Launched {
    pub entry: u32,
    pub kernel_end: u32,
    /// Guest-physical address of the pgdir the guest starts on.
    pub pgdir: u32,
    /// First guest-physical byte of the pagetable pages.
    pub tables: u32,
}

/// Loads the kernel module `[start, end)` into `mem` with `cmdline`, its
/// boot_params lying as `lie` asks (see `lie.rs`).
pub fn launch(mem: &GuestMem, start: u32, end: u32, cmdline: &str, lie: Option<&str>) -> Result<Launched> {
    let kernel = elf::load(start, end, mem)?;
    if kernel.end > mem.size {
        return Err(fatal!("the guest kernel does not fit in guest memory"));
    }
    if cmdline.len() as u32 >= CMDLINE_MAX {
        return Err(fatal!("the guest command line is longer than {} bytes", CMDLINE_MAX - 1));
    }
    write_boot_params(mem, cmdline, &lie::zero_page(lie, mem.size)?)?;
    let (pgdir, tables) = linear_pagetable(mem)?;
    if tables < kernel.end {
        return Err(fatal!("guest memory too small for the kernel and the Launcher's pagetable"));
    }
    Ok(Launched { entry: kernel.entry, kernel_end: kernel.end, pgdir, tables })
}

fn write_boot_params(mem: &GuestMem, cmdline: &str, z: &ZeroPage) -> Result {
    const W: &str = "boot_params";
    mem.fill(0, 8192, 0, W)?;
    mem.write_u32(OFF_HEADER as u32, HEADER_MAGIC, W)?;
    mem.write_u32(OFF_VERSION as u32, 0x207, W)?;
    mem.write_u32(OFF_HARDWARE_SUBARCH as u32, z.hardware_subarch, W)?;
    let flags = mem.read_u8(OFF_LOADFLAGS as u32, W)?;
    mem.write_u8(OFF_LOADFLAGS as u32, flags | KEEP_SEGMENTS, W)?;
    mem.write_u8(OFF_E820_ENTRIES as u32, z.e820_entries, W)?;
    for (i, &(addr, size, ty)) in z.e820[..z.e820_len].iter().enumerate() {
        let e = OFF_E820_TABLE as u32 + i as u32 * E820_ENTRY;
        mem.write_u32(e, addr as u32, W)?;
        mem.write_u32(e + 4, (addr >> 32) as u32, W)?;
        mem.write_u32(e + 8, size as u32, W)?;
        mem.write_u32(e + 12, (size >> 32) as u32, W)?;
        mem.write_u32(e + 16, ty, W)?;
    }
    mem.write_u32(OFF_CMD_LINE_PTR as u32, z.cmd_line_ptr.unwrap_or(CMDLINE), W)?;
    mem.write_bytes(CMDLINE, cmdline.as_bytes(), "the command line")
}

/// Builds the linear map; returns (pgdir, first pte page).
fn linear_pagetable(mem: &GuestMem) -> Result<(u32, u32)> {
    const W: &str = "the Launcher's pagetable";
    let pages = mem.pages();
    let pte_pages = pages.div_ceil(1024);
    let pgdir = mem.size - 4096;
    let first = pgdir - pte_pages * 4096;
    mem.fill(first, (pte_pages + 1) * 4096, 0, W)?;
    for p in 0..pages {
        mem.write_u32(first + p * 4, (p << 12) | LINEAR, W)?;
    }
    let kernel = PAGE_OFFSET >> 22;
    for t in 0..pte_pages {
        let pde = (first + t * 4096) | LINEAR;
        mem.write_u32(pgdir + t * 4, pde, W)?;
        mem.write_u32(pgdir + (kernel + t) * 4, pde, W)?;
    }
    Ok((pgdir, first))
}

/// The guest's registers at its first instruction.
pub fn initial_regs(entry: u32) -> GuestRegs {
    GuestRegs {
        cs: GUEST_CS,
        ds: GUEST_DS,
        es: GUEST_DS,
        ss: GUEST_DS,
        eflags: EFLAGS,
        eip: entry,
        ..GuestRegs::default()
    }
}
