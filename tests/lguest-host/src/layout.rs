//! The host's fixed layout, as the guest sees it: where the Switcher
//! lives, the GDT slots and selectors, the vectors the host handles, and
//! the guest's registers as every trap saves them.

/// Where the Switcher (and the whole host) is linked: the top 4 MiB.
pub const SWITCHER_ADDR: u32 = 0xFFC0_0000;
/// Where the host is loaded.
pub const HOST_PHYS: u32 = 0x10_0000;
/// The pgd slot the Switcher occupies in every pagetable.
pub const SWITCHER_PGD_INDEX: u32 = 1023;
/// What the guest must leave alone: lguest_data.reserve_mem.
pub const SWITCHER_SIZE: u32 = 4 << 20;

/// GDT layout, Linux's: the host's ring-0 segments where lguest had
/// LGUEST_CS/DS (10, 11), the guest kernel's where Linux has __KERNEL_CS/DS
/// (12, 13) but with DPL 1, user segments (14, 15), the TSS (16).
pub const GDT_ENTRIES: usize = 32;
pub const HOST_CS: u16 = 10 << 3;
pub const HOST_DS: u16 = 11 << 3;
pub const GUEST_CS: u32 = (12 << 3) | 1;
pub const GUEST_DS: u32 = (13 << 3) | 1;
pub const USER_CS_INDEX: usize = 14;
pub const USER_DS_INDEX: usize = 15;
pub const TSS_INDEX: usize = 16;
pub const TSS_SEL: u16 = (TSS_INDEX as u16) << 3;

/// Vectors with a stub in the table: the 32 exceptions (0x1f, the
/// hypercall, is among them) and IRQ 0, the host's timer (PIT channel 0).
/// The system call's (0x80) has a stub of its own (`syscall.rs`); every
/// other vector is absent, and an `int` to it a #GP for the guest.
pub const VECTORS: usize = 33;
pub const HYPERCALL_VECTOR: u32 = 0x1F;
pub const TIMER_VECTOR: u32 = 32;

/// The GDT slots the host keeps for itself; LOAD_GDT leaves them alone.
pub fn host_owned(index: usize) -> bool {
    matches!(index, 0 | 10 | 11 | TSS_INDEX)
}

/// The guest's registers as the trap path leaves them on the ring-0 stack
/// (lowest address first): what the Switcher restores and `iret` consumes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GuestRegs {
    pub gs: u32,
    pub fs: u32,
    pub es: u32,
    pub ds: u32,
    pub edi: u32,
    pub esi: u32,
    pub ebp: u32,
    /// pushad's copy of the ring-0 esp: ignored.
    pub esp_ring0: u32,
    pub ebx: u32,
    pub edx: u32,
    pub ecx: u32,
    pub eax: u32,
    pub vector: u32,
    pub error: u32,
    pub eip: u32,
    pub cs: u32,
    pub eflags: u32,
    pub esp: u32,
    pub ss: u32,
}

pub const FRAME: usize = core::mem::size_of::<GuestRegs>();
const _: () = assert!(FRAME == 76);
