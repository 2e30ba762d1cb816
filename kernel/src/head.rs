//! The first instructions: from whichever loader entered us to
//! `start_kernel` running at its link address.
//!
//! Three ways in land here (Xen PV has its own entry in backend-xen):
//! - multiboot (QEMU `-kernel`, GRUB): eax = 0x2BADB002, ebx = info;
//! - PVH (`XEN_ELFNOTE_PHYS32_ENTRY`): ebx = hvm_start_info;
//! - the Linux 32-bit boot protocol: esi = boot_params. From a ring-0
//!   loader that is a PC; in ring 1 it is a paravirtualized host (lguest)
//!   that already runs us with paging on.
//!
//! The ring-0 paths run with paging off, so they are linked at their
//! physical address (`.head.text`). They load a flat GDT (a PVH entry
//! leaves the selectors at 0), build the trivial 2-level boot pagetable
//! that Linux's head.S builds (low memory mapped at 0 and at PAGE_OFFSET,
//! 4 KiB pages, up to the end of the image and its brk area), turn paging on
//! and jump to the kernel's link address. The ring-1 path only jumps: its
//! host mapped us already. `start_kernel(protocol, info)` does the rest.

use paravirt::bootinfo::entry;

core::arch::global_asm!(
    arch_i386::multiboot_header!(),
    // The PVH entry point, for QEMU's and Xen's PVH loaders.
    ".pushsection .note.Xen, \"a\", @note",
    ".align 4",
    ".long 4",
    ".long 4",
    ".long 18", // XEN_ELFNOTE_PHYS32_ENTRY
    ".asciz \"Xen\"",
    ".align 4",
    ".long pvh_start",
    ".popsection",
    //
    ".pushsection .head.text, \"ax\"",
    ".global startup_32",
    "startup_32:",
    "    cld",
    "    cmp eax, 0x2BADB002",
    "    jne 2f",
    "    mov ebp, {multiboot}",
    "    jmp head_native",
    "2:  mov ecx, cs",
    "    test ecx, 3",
    "    jnz head_ring1",
    "    mov ebx, esi",
    "    mov ebp, {linux_boot}",
    "    jmp head_native",
    //
    ".global pvh_start",
    "pvh_start:",
    "    cld",
    "    mov ebp, {pvh}",
    // Ring 0, paging off, flat memory; ebx = info, ebp = protocol.
    "head_native:",
    "    lgdt [boot_gdt_desc]",
    "    mov eax, 0x10",
    "    mov ds, ax",
    "    mov es, ax",
    "    mov ss, ax",
    "    mov fs, ax",
    "    mov gs, ax",
    "    mov esp, offset boot_stack_top - 0xC0000000",
    "    mov eax, 0x08",
    "    push eax",
    "    mov eax, offset head_reloaded",
    "    push eax",
    "    retf",
    // Boot ptes: frame i at entry i, present + writable.
    "head_reloaded:",
    "    mov edi, offset boot_pte_pages - 0xC0000000",
    "    mov ecx, offset __boot_map_pages",
    "    mov eax, 0x003",
    "4:  mov [edi], eax",
    "    add eax, 0x1000",
    "    add edi, 4",
    "    dec ecx",
    "    jnz 4b",
    // Each pte page at pgd[k] (identity) and pgd[768 + k] (PAGE_OFFSET).
    "    mov edi, offset initial_page_table - 0xC0000000",
    "    mov eax, offset boot_pte_pages - 0xC0000000 + 0x003",
    "    mov ecx, offset __boot_map_pages + 1023",
    "    shr ecx, 10",
    "    xor edx, edx",
    "5:  mov [edi + edx * 4], eax",
    "    mov [edi + edx * 4 + 3072], eax",
    "    add eax, 0x1000",
    "    inc edx",
    "    cmp edx, ecx",
    "    jne 5b",
    "    mov eax, offset initial_page_table - 0xC0000000",
    "    mov cr3, eax",
    // Paging on, and write protection honoured in ring 0 too, so the
    // kernel's own read-only mappings mean something.
    "    mov eax, cr0",
    "    or eax, 0x80010000",
    "    mov cr0, eax",
    "    mov eax, offset head_high",
    "    jmp eax",
    // Ring 1 with paging on (lguest): esi = boot_params.
    "head_ring1:",
    "    mov ebx, esi",
    "    mov ebp, {linux_boot}",
    "    mov eax, offset head_ring1_high",
    "    jmp eax",
    //
    ".align 8",
    "boot_gdt:",
    "    .quad 0",
    "    .quad 0x00CF9A000000FFFF",
    "    .quad 0x00CF92000000FFFF",
    "boot_gdt_desc:",
    "    .word 23",
    "    .long boot_gdt",
    ".popsection",
    //
    ".pushsection .text.head_high, \"ax\"",
    "head_high:",
    "    add esp, 0xC0000000",
    "    jmp 6f",
    "head_ring1_high:",
    "    mov esp, offset boot_stack_top",
    "6:  push ebx",
    "    push ebp",
    "    call start_kernel",
    "    ud2",
    ".popsection",
    //
    ".pushsection .bss.head, \"aw\", @nobits",
    ".align 4096",
    ".global initial_page_table",
    "initial_page_table: .skip 4096",
    "boot_pte_pages: .skip 4096 * 4",
    ".global boot_stack_top",
    ".global boot_stack",
    "boot_stack: .skip 32768",
    "boot_stack_top:",
    ".popsection",
    multiboot = const entry::MULTIBOOT,
    pvh = const entry::PVH,
    linux_boot = const entry::LINUX_BOOT,
);

extern "C" {
    static _text: u8;
    static _etext: u8;
    static __start_rodata: u8;
    static __end_rodata: u8;
    static _end: u8;
    static __brk_base: u8;
    static __boot_map_end: u8;
}

/// Addresses the linker script defines.
pub struct Symbols {
    pub text: u32,
    pub etext: u32,
    pub rodata: u32,
    pub erodata: u32,
    pub end: u32,
    /// Start of the brk area (early allocations), up to `end`.
    pub brk: u32,
    /// Physical end of what the head code mapped.
    pub boot_map_end: u32,
}

pub fn symbols() -> Symbols {
    // Only the addresses of linker-defined symbols are taken.
    Symbols {
        text: &raw const _text as u32,
        etext: &raw const _etext as u32,
        rodata: &raw const __start_rodata as u32,
        erodata: &raw const __end_rodata as u32,
        end: &raw const _end as u32,
        brk: &raw const __brk_base as u32,
        boot_map_end: &raw const __boot_map_end as u32,
    }
}
