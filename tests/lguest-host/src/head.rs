//! From QEMU's multiboot entry to `host_main`, running at the top of the
//! address space.
//!
//! QEMU enters `host_start` in ring 0 with paging off, eax = 0x2BADB002 and
//! ebx = the multiboot info. The head zeroes the bss and builds the host's
//! pagetable (2-level, in the bss):
//! - an identity map of the first 1 GiB with 4 MiB pages: the host reaches
//!   every physical page at its own address (the multiboot info, the guest
//!   kernel module, guest memory, the shadow pagetable pool);
//! - the host image at 0xFFC00000, 4 KiB pages, from physical 1 MiB.
//!
//! Then it turns on paging (with CR0.WP, so read-only pages are read-only
//! for rings 0-2 as well, the guest's ring 1 included) and jumps high.

use lguest_host::layout::{HOST_PHYS, SWITCHER_ADDR};

/// Bytes of physical memory the head maps at their own address.
pub const IDENTITY_MAPPED: u64 = 1 << 30;

const _: () = assert!(SWITCHER_ADDR - HOST_PHYS == 0xFFB0_0000);

core::arch::global_asm!(
    arch_i386::multiboot_header!(),
    ".pushsection .head.text, \"ax\"",
    ".global host_start",
    "host_start:",
    "    cli",
    "    cld",
    "    mov esi, eax",
    "    mov ebp, ebx",
    // Zero the bss (at its physical address).
    "    mov edi, offset __bss_start - 0xFFB00000",
    "    mov ecx, offset __bss_end",
    "    sub ecx, offset __bss_start",
    "    xor eax, eax",
    "    rep stosb",
    // Identity map: 256 pgd entries of 4 MiB (present, writable, PS).
    "    mov edi, offset host_pgdir - 0xFFB00000",
    "    mov eax, 0x83",
    "    xor ecx, ecx",
    "1:  mov [edi + ecx * 4], eax",
    "    add eax, 0x400000",
    "    inc ecx",
    "    cmp ecx, 256",
    "    jne 1b",
    // The image: page k of 0xFFC00000 -> HOST_PHYS + k * 4K.
    "    mov edi, offset host_top_pte - 0xFFB00000",
    "    mov eax, 0x100003",
    "    mov ecx, offset __host_pages",
    "2:  mov [edi], eax",
    "    add eax, 0x1000",
    "    add edi, 4",
    "    dec ecx",
    "    jnz 2b",
    "    mov edi, offset host_pgdir - 0xFFB00000",
    "    mov eax, offset host_top_pte - 0xFFB00000 + 3",
    "    mov [edi + 1023 * 4], eax",
    // PSE for the 4 MiB pages, then paging and write protection on.
    "    mov eax, cr4",
    "    or eax, 0x10",
    "    mov cr4, eax",
    "    mov eax, offset host_pgdir - 0xFFB00000",
    "    mov cr3, eax",
    "    mov eax, cr0",
    "    or eax, 0x80010000",
    "    mov cr0, eax",
    "    mov eax, offset host_high",
    "    jmp eax",
    ".popsection",
    //
    ".pushsection .text.host_high, \"ax\"",
    "host_high:",
    "    mov esp, offset host_stack_top",
    "    push ebp",
    "    push esi",
    "    call host_main",
    "    ud2",
    ".popsection",
    //
    ".pushsection .bss.host_pagetable, \"aw\", @nobits",
    ".balign 4096",
    ".global host_pgdir",
    "host_pgdir: .skip 4096",
    "host_top_pte: .skip 4096",
    "host_stack: .skip 65536",
    "host_stack_top:",
    ".popsection",
);

extern "C" {
    static host_pgdir: [u32; 1024];
}

/// The physical address of the host's pgdir: CR3 while the host runs.
pub fn host_cr3() -> u32 {
    (&raw const host_pgdir as u32) - SWITCHER_ADDR + HOST_PHYS
}

extern "C" {
    static __host_end: u8;
}

/// Physical end of the host image (bss included).
pub fn host_phys_end() -> u32 {
    (&raw const __host_end as u32) - SWITCHER_ADDR + HOST_PHYS
}
