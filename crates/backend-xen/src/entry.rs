//! How Xen finds and enters the kernel: ELF notes, and the PV entry point.
//!
//! Xen's domain builder reads "Xen" notes from the image: it loads each
//! segment at VIRT_BASE + (paddr - PADDR_OFFSET), fills the hypercall page,
//! builds a PAE pagetable mapping the image, start_info, the p2m list and
//! the boot pagetable itself, and jumps to ENTRY in ring 1 with esi =
//! start_info. From there the kernel's ordinary `start_kernel` runs, told
//! which protocol brought it (`paravirt::bootinfo::entry::XEN_PV`).

/// One "Xen" ELF note with a string or a 32-bit value.
#[cfg(target_arch = "x86")]
macro_rules! xen_note {
    ($ty:literal, str $s:literal) => {
        concat!(
            ".align 4\n",
            ".long 4, 2f - 1f, ",
            $ty,
            "\n",
            ".asciz \"Xen\"\n",
            ".align 4\n",
            "1: .asciz \"",
            $s,
            "\"\n",
            "2: .align 4\n"
        )
    };
    ($ty:literal, long $v:literal) => {
        concat!(".align 4\n", ".long 4, 4, ", $ty, "\n", ".asciz \"Xen\"\n", ".align 4\n", ".long ", $v, "\n")
    };
}

#[cfg(target_arch = "x86")]
core::arch::global_asm!(
    ".pushsection .note.Xen, \"a\", @note",
    xen_note!("6", str "pvops"),   // GUEST_OS
    xen_note!("7", str "0.1"),     // GUEST_VERSION
    xen_note!("5", str "xen-3.0"), // XEN_VERSION: must start so
    xen_note!("8", str "generic"), // LOADER
    xen_note!("9", str "yes"),     // PAE_MODE: required for 32-bit dom0
    // FEATURES: pagetables are read-only (no writable_page_tables), and
    // the L3 may live above 4 GiB machine addresses.
    xen_note!("10", str "!writable_page_tables|pae_pgdir_above_4gb"),
    xen_note!("3", long "0xC0000000"),     // VIRT_BASE = PAGE_OFFSET
    xen_note!("4", long "0"),              // PADDR_OFFSET
    xen_note!("1", long "xen_start"),      // ENTRY
    xen_note!("2", long "hypercall_page"), // HYPERCALL_PAGE
    ".popsection",
    // Ring 1, paging on (Xen's tables), esi = start_info.
    ".pushsection .text.xen_start, \"ax\"",
    ".global xen_start",
    "xen_start:",
    "    cld",
    "    mov esp, offset boot_stack_top",
    "    push esi",
    "    mov eax, {xen_pv}",
    "    push eax",
    "    call start_kernel",
    "    ud2",
    ".popsection",
    xen_pv = const paravirt::bootinfo::entry::XEN_PV,
);

#[cfg(target_arch = "x86")]
extern "C" {
    fn xen_start();
}

/// The PV entry point's address. Also what makes the linker keep this
/// file's object, and with it the ELF notes: nothing else refers to it.
pub fn entry_point() -> u32 {
    #[cfg(target_arch = "x86")]
    return xen_start as *const () as u32;
    #[cfg(not(target_arch = "x86"))]
    0
}
