//! Xen's public ABI as a 32-bit PAE guest sees it (Xen 4.17,
//! xen/include/public/). A 64-bit Xen runs a 32-bit PV guest in "compat"
//! mode and translates these structures from their i386 layouts, which
//! are what is written here: `unsigned long` and `xen_pfn_t` are 4 bytes.

/// Hypercall numbers (xen.h).
pub mod nr {
    pub const SET_TRAP_TABLE: u32 = 0;
    pub const MMU_UPDATE: u32 = 1;
    pub const MEMORY_OP: u32 = 12;
    pub const MULTICALL: u32 = 13;
    pub const UPDATE_VA_MAPPING: u32 = 14;
    pub const CONSOLE_IO: u32 = 18;
    pub const MMUEXT_OP: u32 = 26;
    pub const SCHED_OP: u32 = 29;
    pub const EVENT_CHANNEL_OP: u32 = 32;
    pub const PHYSDEV_OP: u32 = 33;
}

pub const DOMID_SELF: u32 = 0x7FF0;

/// The flat ring-1 code selector Xen provides a 32-bit PV kernel.
pub const FLAT_RING1_CS: u16 = 0xE019;

/// `struct mmu_update`: `ptr` is the machine address of the entry (low two
/// bits: the command; 0, MMU_NORMAL_PT_UPDATE, a checked `*ptr = val`, is
/// the only one this kernel uses, and an 8-aligned entry address already
/// says it), `val` the new entry (machine frame + flags).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmuUpdate {
    pub ptr: u64,
    pub val: u64,
}

/// `struct mmuext_op` (12 bytes on i386).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmuextOp {
    pub cmd: u32,
    /// mfn or linear address
    pub arg1: u32,
    pub arg2: u32,
}

pub mod mmuext {
    pub const PIN_L3_TABLE: u32 = 2;
    pub const UNPIN_TABLE: u32 = 4;
    pub const NEW_BASEPTR: u32 = 5;
    pub const TLB_FLUSH_LOCAL: u32 = 6;
    pub const INVLPG_LOCAL: u32 = 7;
}

/// update_va_mapping flags: invalidate just this address.
pub const UVMF_INVLPG: u32 = 2;

/// `struct multicall_entry` on i386: all fields 32-bit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MulticallEntry {
    pub op: u32,
    /// The sub-call's return value, written by Xen.
    pub result: u32,
    pub args: [u32; 6],
}

/// `struct trap_info` (8 bytes): the PV IDT entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapInfo {
    pub vector: u8,
    /// Bits 0-1: DPL that may `int n` to it; bit 2: mask events on entry.
    pub flags: u8,
    pub cs: u16,
    pub address: u32,
}

pub const CONSOLEIO_WRITE: u32 = 0;
pub const SCHEDOP_YIELD: u32 = 0;
pub const SCHEDOP_SHUTDOWN: u32 = 2;
/// SCHEDOP_shutdown reasons: how `xl` sees the domain end. A run that
/// passed (or skipped) powers off; one that failed says it crashed.
pub const SHUTDOWN_POWEROFF: u32 = 0;
pub const SHUTDOWN_CRASH: u32 = 3;
/// event_channel_op: notify the other end of a port.
pub const EVTCHNOP_SEND: u32 = 4;
pub const PHYSDEVOP_SET_IOPL: u32 = 6;
/// memory_op: where the read-only machine-to-phys table is mapped.
pub const XENMEM_MACHPHYS_MAPPING: u32 = 12;

/// `struct xen_machphys_mapping` (compat: three 32-bit words).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MachphysMapping {
    pub v_start: u32,
    pub v_end: u32,
    pub max_mfn: u32,
}

/// Where the hypervisor's part of a compat guest's address space starts,
/// if Xen does not say otherwise (HYPERVISOR_COMPAT_VIRT_START).
pub const DEFAULT_HV_START: u32 = 0xF580_0000;

const _: () = {
    assert!(core::mem::size_of::<MmuUpdate>() == 16);
    assert!(core::mem::size_of::<MmuextOp>() == 12);
    assert!(core::mem::size_of::<MulticallEntry>() == 32);
    assert!(core::mem::size_of::<TrapInfo>() == 8);
};
