//! The return from an interrupt (Linux's `INTERRUPT_RETURN`), lguest's
//! way: 2.6.24's `lguest_iret` (arch/x86/lguest/i386_head.S).
//!
//! The kernel's interrupt flag under lguest is `lguest_data.irq_enabled`,
//! not eflags.IF: the guest always runs with the real IF set, and in
//! ring 1 `iret` could not change it anyway. So returning from an
//! interrupt must do two things, restore the flag from the frame's
//! eflags and pop the frame, and they cannot be one instruction:
//!
//! ```text
//!   push eax
//!   mov  eax, [esp + 12]          the frame's eflags (eip, cs, eflags above eax)
//!   and  eax, 0x200               its IF: 512 or 0
//! noirq_start:
//!   mov  ss:[irq_enabled], eax    the flag says "enabled" from here on ...
//!   pop  eax
//!   iretd                         ... but the frame is popped only here
//! noirq_end:
//! ```
//!
//! An interrupt injected after the store and before the `iretd` would be
//! taken on a stack that still holds the frame being returned from, and
//! in a storm every interrupt would stack another one: the stack grows
//! without bound. So the guest tells the host the window's bounds in
//! `lguest_data.noirq_start`/`noirq_end` before LGUEST_INIT, and the host
//! never injects while the guest's eip is inside `[start, end)`.
//!
//! Two details differ from the C-preprocessed original:
//! - only IF is stored (`and eax, 0x200`): 2.6.24 stores the whole
//!   eflags, and its host tests the word for non-zero, but bit 1 of
//!   eflags is always set, so a return to an interrupts-off frame (a page
//!   fault taken with interrupts off) would read as "enabled". Our host
//!   tests bit 9, and the word only ever holds 0 or 512.
//! - `iretd`, spelled out: in LLVM's Intel syntax a bare `iret` assembles
//!   as the 16-bit `iretw`.
//!
//! The store goes through `ss`, as in 2.6.24: on a return to user mode
//! the data segments already hold the user's selectors, and only the
//! stack segment is still the kernel's.

#[cfg(target_arch = "x86")]
mod imp {
    use crate::abi::off;
    use crate::shared::LGUEST_DATA;

    core::arch::global_asm!(
        ".pushsection .text.lguest_iret, \"ax\"",
        ".global lguest_iret",
        "lguest_iret:",
        "    push eax",
        "    mov eax, [esp + 12]",
        "    and eax, {if_bit}",
        ".global lguest_noirq_start",
        "lguest_noirq_start:",
        "    mov dword ptr ss:[{data} + {irq_enabled}], eax",
        "    pop eax",
        "    iretd",
        ".global lguest_noirq_end",
        "lguest_noirq_end:",
        ".popsection",
        if_bit = const crate::abi::IRQ_ENABLED,
        data = sym LGUEST_DATA,
        irq_enabled = const off::IRQ_ENABLED,
    );

    extern "C" {
        fn lguest_iret();
        static lguest_noirq_start: u8;
        static lguest_noirq_end: u8;
    }

    pub fn address() -> u32 {
        lguest_iret as *const () as u32
    }

    pub fn noirq_window() -> (u32, u32) {
        (&raw const lguest_noirq_start as u32, &raw const lguest_noirq_end as u32)
    }
}

/// Host builds (tests): no guest code, an empty window.
#[cfg(not(target_arch = "x86"))]
mod imp {
    pub fn address() -> u32 {
        0
    }

    pub fn noirq_window() -> (u32, u32) {
        (0, 0)
    }
}

/// Where the kernel's interrupt exit jumps ([`paravirt::Cpu::iret`]).
pub use imp::address;
/// `[noirq_start, noirq_end)`: the instructions the host must not
/// interrupt, for `lguest_data`.
pub use imp::noirq_window;
