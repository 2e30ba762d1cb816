//! Switching a running CPU from 2-level to PAE paging.
//!
//! CR4.PAE must not change while paging is on, so the switch turns paging
//! off for a few instructions. While it is off, instruction fetch uses
//! physical addresses: the code must run at an address that is the same
//! physically and virtually. It therefore lives in `.head.text`, which the
//! kernel's linker script places at its load address (virtual == physical),
//! and the new pagetable must map that address too (the seed patch's
//! identity alias, pgd[0] = pgd[3]).
//!
//! No memory is touched while paging is off: the stack is at a kernel
//! virtual address and only becomes reachable again through the new tables.

#[cfg(target_arch = "x86")]
core::arch::global_asm!(
    ".pushsection .head.text, \"ax\"",
    ".global pvops_enable_pae",
    "pvops_enable_pae:",
    "    mov ecx, [esp + 4]",
    "    mov eax, cr0",
    "    and eax, 0x7fffffff",
    "    mov cr0, eax",
    "    mov cr3, ecx",
    "    mov eax, cr4",
    "    or eax, 0x20",
    "    mov cr4, eax",
    "    mov eax, cr0",
    "    or eax, 0x80000000",
    "    mov cr0, eax",
    "    jmp 2f",
    "2:  ret",
    ".popsection",
);

#[cfg(target_arch = "x86")]
extern "C" {
    fn pvops_enable_pae(cr3: u32);
}

/// Loads `cr3` (a PAE pdpt) and turns on PAE.
///
/// # Safety
/// The new pagetable must map the kernel at its link address and the
/// head section at its physical address.
#[cfg(target_arch = "x86")]
pub unsafe fn enable_pae(cr3: u32) {
    // Called through a pointer: the routine's link address is its low
    // physical one, and an absolute call says so plainly.
    let f: unsafe extern "C" fn(u32) = pvops_enable_pae;
    // SAFETY: forwarded to the caller.
    unsafe { f(cr3) }
}

/// # Safety
/// Never: host builds have no paging to switch.
#[cfg(not(target_arch = "x86"))]
pub unsafe fn enable_pae(_cr3: u32) {
    panic!("enable_pae called on the host")
}
