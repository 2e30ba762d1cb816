//! The lguest guest ABI (Linux 2.6.24) from the host's side: hypercall
//! numbers and where things are in the guest's `struct lguest_data`.
//!
//! Written independently of the guest's copy (crates/backend-lguest's
//! `abi.rs`, whose unit tests check the same offsets against its struct):
//! two readings of one specification, so a mistake in either shows up as a
//! failed boot.

pub const FLUSH_ASYNC: u32 = 0;
pub const LGUEST_INIT: u32 = 1;
pub const CRASH: u32 = 2;
pub const LOAD_GDT: u32 = 3;
pub const NEW_PGTABLE: u32 = 4;
pub const FLUSH_TLB: u32 = 5;
pub const LOAD_IDT_ENTRY: u32 = 6;
pub const SET_STACK: u32 = 7;
pub const TS: u32 = 8;
pub const SET_CLOCKEVENT: u32 = 9;
pub const HALT: u32 = 10;
pub const SET_PTE: u32 = 14;
pub const SET_PMD: u32 = 15;
pub const LOAD_TLS: u32 = 16;
pub const NOTIFY: u32 = 17;
/// Hypercall numbers are below this.
pub const NR_HCALLS: usize = 18;

pub fn name(nr: u32) -> &'static str {
    match nr {
        FLUSH_ASYNC => "FLUSH_ASYNC",
        LGUEST_INIT => "LGUEST_INIT",
        CRASH => "CRASH",
        LOAD_GDT => "LOAD_GDT",
        NEW_PGTABLE => "NEW_PGTABLE",
        FLUSH_TLB => "FLUSH_TLB",
        LOAD_IDT_ENTRY => "LOAD_IDT_ENTRY",
        SET_STACK => "SET_STACK",
        TS => "TS",
        SET_CLOCKEVENT => "SET_CLOCKEVENT",
        HALT => "HALT",
        SET_PTE => "SET_PTE",
        SET_PMD => "SET_PMD",
        LOAD_TLS => "LOAD_TLS",
        NOTIFY => "NOTIFY",
        _ => "unknown",
    }
}

/// Slots in the async ring.
pub const RING_SIZE: u32 = 64;
/// A ring slot the host has done (or that was never used).
pub const STATUS_DONE: u8 = 0xFF;

/// `struct lguest_data` on i386, every field 4 bytes but the 64 status
/// bytes:
///
/// ```text
/// offset field                 offset field
///      0 irq_enabled             1112 reserve_mem      (host)
///      4 blocked_interrupts      1116 tsc_khz          (host)
///      8 cr2               (host)1120 pgdir            (host)
///     12 time (2 longs)    (host)1124 noirq_start      (guest)
///     20 irq_pending       (host)1128 noirq_end        (guest)
///     24 hcall_status[64]        1132 kernel_address   (guest)
///     88 hcalls[64] x 16         1136 syscall_vec      (guest)
///                                1140 end
/// ```
///
/// Each `hcalls` entry is 2.6.24's `struct hcall_args { arg0, arg2, arg3,
/// arg1 }`: the registers eax, ebx, ecx, edx in that order.
pub mod off {
    pub const IRQ_ENABLED: u32 = 0;
    pub const CR2: u32 = 8;
    pub const HCALL_STATUS: u32 = 24;
    pub const HCALLS: u32 = 88;
    pub const HCALL_SIZE: u32 = 16;
    pub const RESERVE_MEM: u32 = 1112;
    pub const TSC_KHZ: u32 = 1116;
    pub const PGDIR: u32 = 1120;
    pub const NOIRQ_START: u32 = 1124;
    pub const NOIRQ_END: u32 = 1128;
    pub const KERNEL_ADDRESS: u32 = 1132;
    pub const SYSCALL_VEC: u32 = 1136;
    pub const SIZE: u32 = 1140;

    const _: () = assert!(HCALLS == HCALL_STATUS + super::RING_SIZE);
    const _: () = assert!(RESERVE_MEM == HCALLS + super::RING_SIZE * HCALL_SIZE);
    const _: () = assert!(SIZE == SYSCALL_VEC + 4);
}

/// `lguest_data.irq_enabled`'s "enabled" value (eflags.IF).
pub const IRQ_ENABLED: u32 = 512;
