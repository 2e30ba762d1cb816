//! The processor's interrupt flag: the instructions behind Linux's
//! `native_irq_disable` and friends. Under a PV hypervisor the kernel's
//! interrupt flag is virtual and these are not used (in ring 1 `cli`
//! faults or is ignored): the backends' `Irq` groups say what replaces
//! them.

/// EFLAGS.IF, the bit `save_fl` and `restore_fl` are about.
pub const IF: u32 = 1 << 9;

#[cfg(target_arch = "x86")]
mod imp {
    /// EFLAGS.
    pub fn flags() -> u32 {
        let f: u32;
        // SAFETY: pushfd/pop reads EFLAGS and touches only the stack.
        unsafe { core::arch::asm!("pushfd", "pop {}", out(reg) f, options(nomem, preserves_flags)) };
        f
    }

    /// Restores EFLAGS.IF from `flags` (the other bits are the caller's
    /// own arithmetic flags, which `popfd` also restores: harmless, the
    /// compiler is told).
    pub fn restore(flags: u32) {
        // SAFETY: popfd of a value read by `flags` changes IF and the
        // arithmetic flags; in ring 0 nothing else it could change (IOPL,
        // VM) differs from what `flags` read.
        unsafe { core::arch::asm!("push {}", "popfd", in(reg) flags, options(nomem)) };
    }

    pub fn disable() {
        // SAFETY: cli only masks interrupts. Not `nomem`: it orders the
        // critical section's memory accesses after it.
        unsafe { core::arch::asm!("cli", options(nostack)) };
    }

    pub fn enable() {
        // SAFETY: sti lets interrupts in; the kernel's handlers are
        // installed before anything calls this.
        unsafe { core::arch::asm!("sti", options(nostack)) };
    }

    /// `sti; hlt`: the instruction after `sti` runs before any interrupt
    /// is taken, so an interrupt cannot slip in between the two and leave
    /// the CPU halted with nothing to wake it.
    pub fn safe_halt() {
        // SAFETY: as enable; hlt waits for the next interrupt.
        unsafe { core::arch::asm!("sti", "hlt", options(nostack)) };
    }

    /// `hlt` with the interrupt flag as it is.
    pub fn halt() {
        // SAFETY: hlt waits for the next interrupt (forever if disabled:
        // the caller asked for that).
        unsafe { core::arch::asm!("hlt", options(nostack)) };
    }
}

#[cfg(not(target_arch = "x86"))]
mod imp {
    pub fn flags() -> u32 {
        0
    }
    pub fn restore(_: u32) {}
    pub fn disable() {}
    pub fn enable() {}
    pub fn safe_halt() {}
    pub fn halt() {}
}

pub use imp::{disable, enable, flags, halt, restore, safe_halt};
