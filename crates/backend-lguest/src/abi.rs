//! lguest's guest ABI as Linux 2.6.24 defined it
//! (`include/asm-x86/lguest_hcall.h`, `include/linux/lguest.h`): hypercall
//! numbers, the async ring's entry, and `struct lguest_data`, the page the
//! guest shares with the host.
//!
//! This is the one definition of the layout: the guest backend and the
//! project's lguest host (tests/lguest-host) both use it, and the tests
//! below check every offset the host reads against the struct.
//!
//! 2.6.24's `lguest_data` has no `irq_pending` (that field, and
//! LHCALL_SEND_INTERRUPTS, came with a later kernel): a pending interrupt
//! is delivered at the guest's next exit to the host, not by an
//! enable-time hypercall.
//!
//! A hypercall is `int $0x1f` with the call number in eax and up to three
//! arguments in edx, ebx and ecx (in that order: arg1, arg2, arg3).
//!
//! Every field is 32 bits wide on i386 (`unsigned long`, `int`, the IRQ
//! bitmap's one word, `struct timespec`'s two longs), so the structures
//! below have the same layout whether they are compiled for the kernel or
//! for a 64-bit host running the unit tests.

/// Hypercall numbers.
pub mod nr {
    /// Hypercall numbers are below this.
    pub const COUNT: usize = 18;

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

    /// The name of a hypercall number, for logs.
    pub fn name(n: u32) -> &'static str {
        match n {
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
}

/// The trap vector of a hypercall.
pub const TRAP_ENTRY: u8 = 0x1F;

/// Slots in the async hypercall ring.
pub const RING_SIZE: usize = 64;
/// `hcall_status` values: the host has done the call (or the slot was
/// never used) / the guest has posted a call there.
pub const STATUS_DONE: u8 = 0xFF;
pub const STATUS_PENDING: u8 = 0;

/// `lguest_data.irq_enabled` when interrupts are enabled (eflags.IF).
pub const IRQ_ENABLED: u32 = 512;

/// lguest's interrupts: 32, one bit each in `blocked_interrupts`; IRQ n
/// arrives at vector `FIRST_EXTERNAL_VECTOR + n`. IRQ 0 is the clock.
pub const LGUEST_IRQS: u32 = 32;
pub const FIRST_EXTERNAL_VECTOR: u32 = 32;
/// The clock event device's interrupt (SET_CLOCKEVENT raises it).
pub const TIMER_IRQ: u32 = 0;
/// The system-call vector the host insists on (`syscall_vec`).
pub const SYSCALL_VECTOR: u32 = 0x80;
/// The clock event device's smallest and largest delta (ns): 2.6.24's
/// LG_CLOCK_MIN_DELTA and LG_CLOCK_MAX_DELTA (ULONG_MAX on i386).
pub const CLOCK_MIN_DELTA: u32 = 100;
pub const CLOCK_MAX_DELTA: u32 = u32::MAX;

/// The CRASH message that means "power off", not "crashed".
pub const POWER_DOWN: &[u8] = b"Power down\0";

/// One async hypercall: `struct hcall_args`. 2.6.24 lays its fields out in
/// the order of `struct lguest_regs` (eax, ebx, ecx, edx), that is
/// `arg0, arg2, arg3, arg1`, so the host can copy them straight into its
/// saved registers.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HcallArgs {
    /// The call number.
    pub eax: u32,
    /// arg2
    pub ebx: u32,
    /// arg3
    pub ecx: u32,
    /// arg1
    pub edx: u32,
}

impl HcallArgs {
    pub const fn new(call: u32, arg1: u32, arg2: u32, arg3: u32) -> HcallArgs {
        HcallArgs { eax: call, ebx: arg2, ecx: arg3, edx: arg1 }
    }
}

/// `struct lguest_data`.
#[repr(C)]
pub struct LguestData {
    /// The guest's interrupt flag: 512 (eflags.IF) when it takes
    /// interrupts, 0 when not. Written by the guest (a plain store, no
    /// hypercall) and by the host (0 when it delivers through an
    /// interrupt gate, 512 when it wakes a halted guest).
    pub irq_enabled: u32,
    /// Bitmap of the 32 lguest IRQs the guest blocks (bit n: IRQ n); the
    /// host only reads it.
    pub blocked_interrupts: u32,
    /// Written by the host: the address of the last page fault.
    pub cr2: u32,
    /// Written by the host: wall-clock time (`struct timespec`), at
    /// LGUEST_INIT and whenever it gets past the checks for delivering
    /// an interrupt.
    pub time: [u32; 2],
    /// The async ring: status of each slot, then the calls.
    pub hcall_status: [u8; RING_SIZE],
    pub hcalls: [HcallArgs; RING_SIZE],
    /// Written by the host at LGUEST_INIT: bytes at the top of the address
    /// space the guest must leave alone (the Switcher).
    pub reserve_mem: u32,
    /// Written by the host at LGUEST_INIT: the TSC's rate, or 0 if the
    /// guest must not use the TSC as a clock.
    pub tsc_khz: u32,
    /// Guest-physical address of the pagetable the guest booted on.
    pub pgdir: u32,
    /// Written by the guest before LGUEST_INIT: the addresses (inclusive,
    /// exclusive) between which the host never injects an interrupt
    /// (the guest's `iret`, see the backend's `iret.rs`).
    pub noirq_start: u32,
    pub noirq_end: u32,
    /// Above this address all pagetables map the same (the kernel).
    pub kernel_address: u32,
    pub syscall_vec: u32,
}

impl LguestData {
    /// The guest's initial copy: every ring slot free.
    pub const INIT: LguestData = LguestData {
        irq_enabled: 0,
        blocked_interrupts: 0,
        cr2: 0,
        time: [0; 2],
        hcall_status: [STATUS_DONE; RING_SIZE],
        hcalls: [HcallArgs { eax: 0, ebx: 0, ecx: 0, edx: 0 }; RING_SIZE],
        reserve_mem: 0,
        tsc_khz: 0,
        pgdir: 0,
        noirq_start: 0,
        noirq_end: 0,
        kernel_address: 0,
        syscall_vec: 0,
    };
}

/// Byte offsets in `struct lguest_data`, computed by hand from the i386
/// layout (every field 4-byte aligned; the u8 status array is 64 bytes, so
/// `hcalls` stays aligned) and checked against the struct by the tests.
/// The host (tests/lguest-host) reads guest memory at these offsets.
///
/// ```text
///    0 irq_enabled          4 blocked_interrupts    8 cr2
///   12 time (tv_sec, tv_nsec)
///   20 hcall_status[64]    84 hcalls[64] (16 bytes each: eax ebx ecx edx)
/// 1108 reserve_mem       1112 tsc_khz            1116 pgdir
/// 1120 noirq_start       1124 noirq_end          1128 kernel_address
/// 1132 syscall_vec       1136 = sizeof
/// ```
pub mod off {
    pub const IRQ_ENABLED: u32 = 0;
    pub const BLOCKED_INTERRUPTS: u32 = 4;
    pub const CR2: u32 = 8;
    pub const TIME: u32 = 12;
    pub const HCALL_STATUS: u32 = 20;
    pub const HCALLS: u32 = 84;
    pub const RESERVE_MEM: u32 = 1108;
    pub const TSC_KHZ: u32 = 1112;
    pub const PGDIR: u32 = 1116;
    pub const NOIRQ_START: u32 = 1120;
    pub const NOIRQ_END: u32 = 1124;
    pub const KERNEL_ADDRESS: u32 = 1128;
    pub const SYSCALL_VEC: u32 = 1132;
    pub const SIZE: u32 = 1136;
    /// Bytes per `hcalls` entry.
    pub const HCALL_SIZE: u32 = 16;
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn lguest_data_layout_is_2_6_24s() {
        assert_eq!(offset_of!(LguestData, irq_enabled) as u32, off::IRQ_ENABLED);
        assert_eq!(offset_of!(LguestData, blocked_interrupts) as u32, off::BLOCKED_INTERRUPTS);
        assert_eq!(offset_of!(LguestData, cr2) as u32, off::CR2);
        assert_eq!(offset_of!(LguestData, time) as u32, off::TIME);
        assert_eq!(offset_of!(LguestData, hcall_status) as u32, off::HCALL_STATUS);
        assert_eq!(offset_of!(LguestData, hcalls) as u32, off::HCALLS);
        assert_eq!(offset_of!(LguestData, reserve_mem) as u32, off::RESERVE_MEM);
        assert_eq!(offset_of!(LguestData, tsc_khz) as u32, off::TSC_KHZ);
        assert_eq!(offset_of!(LguestData, pgdir) as u32, off::PGDIR);
        assert_eq!(offset_of!(LguestData, noirq_start) as u32, off::NOIRQ_START);
        assert_eq!(offset_of!(LguestData, noirq_end) as u32, off::NOIRQ_END);
        assert_eq!(offset_of!(LguestData, kernel_address) as u32, off::KERNEL_ADDRESS);
        assert_eq!(offset_of!(LguestData, syscall_vec) as u32, off::SYSCALL_VEC);
        assert_eq!(size_of::<LguestData>() as u32, off::SIZE);
        assert_eq!(size_of::<HcallArgs>() as u32, off::HCALL_SIZE);
    }

    #[test]
    fn hcall_args_follow_the_register_order() {
        // arg0 = eax, arg1 = edx, arg2 = ebx, arg3 = ecx; stored eax, ebx, ecx, edx.
        let a = HcallArgs::new(14, 0x1000, 0xC000_0000, 0x63);
        assert_eq!(offset_of!(HcallArgs, eax), 0);
        assert_eq!(offset_of!(HcallArgs, ebx), 4);
        assert_eq!(offset_of!(HcallArgs, ecx), 8);
        assert_eq!(offset_of!(HcallArgs, edx), 12);
        assert_eq!((a.eax, a.edx, a.ebx, a.ecx), (14, 0x1000, 0xC000_0000, 0x63));
    }

    #[test]
    fn ring_starts_free() {
        assert!(LguestData::INIT.hcall_status.iter().all(|&s| s == STATUS_DONE));
    }
}
