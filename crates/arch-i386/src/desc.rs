//! Segment, system and gate descriptors, and the instructions that load
//! them.
//!
//! i386 paging sits on top of segmentation: every code and data segment we
//! use is flat (base 0, limit 4 GiB), so virtual addresses are linear
//! addresses. The GDT also holds the TSS, whose only jobs here are the
//! ring-0 stack for interrupts and a separate task for double faults (a
//! task gate switches stacks even when the kernel stack is gone).

/// The kernel's GDT, Linux's i386 numbering (so a guest of a host that
/// reserves Linux's slots, as lguest does, finds its segments where the
/// host expects them): entries 12-15 the kernel's and user code and data,
/// 16 the TSS, 31 the double-fault task. Xen PV uses Xen's own flat
/// selectors instead (`FLAT_RING1_CS` and friends), which Xen keeps in the
/// part of the GDT it reserves.
pub mod layout {
    pub const ENTRIES: usize = 32;
    pub const KERNEL_CS_INDEX: usize = 12;
    pub const KERNEL_DS_INDEX: usize = 13;
    pub const USER_CS_INDEX: usize = 14;
    pub const USER_DS_INDEX: usize = 15;
    pub const TSS_INDEX: usize = 16;
    pub const DF_TSS_INDEX: usize = 31;

    const fn sel(index: usize, rpl: u16) -> u16 {
        (index as u16) << 3 | rpl
    }
    pub const KERNEL_CS: u16 = sel(KERNEL_CS_INDEX, 0);
    pub const KERNEL_DS: u16 = sel(KERNEL_DS_INDEX, 0);
    pub const USER_CS: u16 = sel(USER_CS_INDEX, 3);
    pub const USER_DS: u16 = sel(USER_DS_INDEX, 3);
    pub const TSS: u16 = sel(TSS_INDEX, 0);
    pub const DF_TSS: u16 = sel(DF_TSS_INDEX, 0);
}

/// The selectors a kernel uses, which depend on the ring it runs in and on
/// who owns the GDT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selectors {
    pub kernel_cs: u16,
    pub kernel_ds: u16,
    pub user_cs: u16,
    pub user_ds: u16,
}

impl Selectors {
    /// A ring-0 kernel on its own GDT.
    pub const NATIVE: Selectors = Selectors {
        kernel_cs: layout::KERNEL_CS,
        kernel_ds: layout::KERNEL_DS,
        user_cs: layout::USER_CS,
        user_ds: layout::USER_DS,
    };
}

/// Access byte of a present ring-0 code segment (execute/read).
pub const ACCESS_CODE: u8 = 0x9A;
/// Access byte of a present ring-0 data segment (read/write).
pub const ACCESS_DATA: u8 = 0x92;
/// Access byte of an available 32-bit TSS.
pub const ACCESS_TSS: u8 = 0x89;
/// Flags nibble: 4 KiB granularity, 32-bit.
pub const FLAGS_4K_32: u8 = 0xC;

/// Builds a segment descriptor.
pub const fn segment(base: u32, limit: u32, access: u8, flags: u8) -> u64 {
    let limit = limit as u64;
    let base = base as u64;
    (limit & 0xFFFF)
        | ((base & 0xFF_FFFF) << 16)
        | ((access as u64) << 40)
        | (((limit >> 16) & 0xF) << 48)
        | (((flags as u64) & 0xF) << 52)
        | (((base >> 24) & 0xFF) << 56)
}

/// A flat 4 GiB segment with the given access byte.
pub const fn flat(access: u8) -> u64 {
    segment(0, 0xF_FFFF, access, FLAGS_4K_32)
}

/// With its privilege level set to `dpl` (ring 1 for a PV guest kernel).
pub const fn with_dpl(desc: u64, dpl: u8) -> u64 {
    (desc & !(3 << 45)) | (((dpl as u64) & 3) << 45)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum GateKind {
    /// Clears IF on entry.
    Interrupt,
    /// Leaves IF alone.
    Trap,
    /// Switches to the task whose TSS selector is in the gate.
    Task,
}

/// Builds a 32-bit IDT gate.
pub const fn gate(offset: u32, selector: u16, kind: GateKind, dpl: u8) -> u64 {
    let ty: u64 = match kind {
        GateKind::Interrupt => 0xE,
        GateKind::Trap => 0xF,
        GateKind::Task => 0x5,
    };
    let offset = match kind {
        GateKind::Task => 0,
        _ => offset as u64,
    };
    (offset & 0xFFFF)
        | ((selector as u64) << 16)
        | (ty << 40)
        | (((dpl as u64) & 3) << 45)
        | (1 << 47)
        | ((offset & 0xFFFF_0000) << 32)
}

/// The handler address of an interrupt or trap gate.
pub const fn gate_offset(g: u64) -> u32 {
    ((g & 0xFFFF) | ((g >> 32) & 0xFFFF_0000)) as u32
}

/// The 32-bit task-state segment (Intel SDM vol. 3, 8.2.1).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct Tss {
    pub link: u32,
    pub esp0: u32,
    pub ss0: u32,
    pub esp1: u32,
    pub ss1: u32,
    pub esp2: u32,
    pub ss2: u32,
    pub cr3: u32,
    pub eip: u32,
    pub eflags: u32,
    pub eax: u32,
    pub ecx: u32,
    pub edx: u32,
    pub ebx: u32,
    pub esp: u32,
    pub ebp: u32,
    pub esi: u32,
    pub edi: u32,
    pub es: u32,
    pub cs: u32,
    pub ss: u32,
    pub ds: u32,
    pub fs: u32,
    pub gs: u32,
    pub ldt: u32,
    pub trap: u16,
    pub iomap_base: u16,
}

impl Tss {
    pub const fn new() -> Tss {
        Tss {
            link: 0,
            esp0: 0,
            ss0: 0,
            esp1: 0,
            ss1: 0,
            esp2: 0,
            ss2: 0,
            cr3: 0,
            eip: 0,
            eflags: 0,
            eax: 0,
            ecx: 0,
            edx: 0,
            ebx: 0,
            esp: 0,
            ebp: 0,
            esi: 0,
            edi: 0,
            es: 0,
            cs: 0,
            ss: 0,
            ds: 0,
            fs: 0,
            gs: 0,
            ldt: 0,
            trap: 0,
            // Beyond the limit: no I/O bitmap.
            iomap_base: core::mem::size_of::<Tss>() as u16,
        }
    }
}

/// The operand of `lgdt`/`lidt`.
#[repr(C, packed)]
#[derive(Clone, Copy, Debug)]
pub struct TablePointer {
    pub limit: u16,
    pub base: u32,
}

impl TablePointer {
    pub fn of<T>(table: &[T]) -> TablePointer {
        TablePointer {
            limit: (core::mem::size_of_val(table) - 1) as u16,
            base: table.as_ptr() as usize as u32,
        }
    }
}

/// Loads the GDT and reloads every segment register from it.
///
/// # Safety
/// `gdt` must stay alive and unchanged in its code/data slots for as long
/// as it is loaded, and `cs`/`ds` must select flat segments there.
#[cfg(target_arch = "x86")]
pub unsafe fn load_gdt(gdt: &TablePointer, cs: u16, ds: u16) {
    // SAFETY: forwarded to the caller; the far return reloads CS.
    unsafe {
        core::arch::asm!(
            "lgdt [{gdt}]",
            "mov ds, {ds:e}",
            "mov es, {ds:e}",
            "mov ss, {ds:e}",
            "mov fs, {ds:e}",
            "mov gs, {ds:e}",
            "push {cs:e}",
            "lea {tmp}, [2f]",
            "push {tmp}",
            "retf",
            "2:",
            gdt = in(reg) gdt,
            cs = in(reg) cs as u32,
            ds = in(reg) ds as u32,
            tmp = out(reg) _,
        );
    }
}

/// # Safety
/// `idt` must stay alive while loaded and hold valid gates.
#[cfg(target_arch = "x86")]
pub unsafe fn load_idt(idt: &TablePointer) {
    // SAFETY: forwarded to the caller.
    unsafe { core::arch::asm!("lidt [{}]", in(reg) idt, options(nostack)) }
}

/// # Safety
/// `sel` must select an available TSS descriptor in the loaded GDT.
#[cfg(target_arch = "x86")]
pub unsafe fn load_tr(sel: u16) {
    // SAFETY: forwarded to the caller.
    unsafe { core::arch::asm!("ltr {0:x}", in(reg) sel, options(nostack)) }
}

/// The current privilege level: the low two bits of CS.
#[cfg(target_arch = "x86")]
pub fn cpl() -> u8 {
    let cs: u32;
    // SAFETY: reading CS has no side effects.
    unsafe { core::arch::asm!("mov {0:e}, cs", out(reg) cs, options(nomem, nostack)) };
    (cs & 3) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_segments_match_the_classic_encoding() {
        assert_eq!(flat(ACCESS_CODE), 0x00CF_9A00_0000_FFFF);
        assert_eq!(flat(ACCESS_DATA), 0x00CF_9200_0000_FFFF);
        assert_eq!(with_dpl(flat(ACCESS_CODE), 1), 0x00CF_BA00_0000_FFFF);
    }

    #[test]
    fn gates() {
        let g = gate(0xC010_1234, 0x08, GateKind::Interrupt, 0);
        assert_eq!(g, 0xC010_8E00_0008_1234);
        assert_eq!(gate_offset(g), 0xC010_1234);
        let t = gate(0, 0x28, GateKind::Task, 0);
        assert_eq!(t, 0x0000_8500_0028_0000);
    }

    #[test]
    fn tss_is_104_bytes() {
        assert_eq!(core::mem::size_of::<Tss>(), 104);
    }
}
