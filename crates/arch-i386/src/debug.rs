//! The debug registers: a hardware watchpoint on one linear address, and
//! the status that says what trapped.
//!
//! DR0-DR3 hold up to four linear addresses; DR7 enables each one for
//! instruction fetches, writes, or reads and writes of 1, 2, 4 (or 8)
//! bytes. A data watchpoint is a trap: the #DB (vector 1) comes after the
//! instruction that wrote, with DR6 saying which one fired (B0-B3) or that
//! the trap flag did (BS). The processor never clears DR6: its handler
//! does. Ring 0 only, like the control registers (`cr.rs`): reading is
//! safe, writing an `unsafe fn`.
//!
//! Only what the lguest host needs: slot 0, a 4-byte write watch.

/// DR6: breakpoint 0 fired; the trap flag fired (a single step).
pub const DR6_B0: u32 = 1 << 0;
pub const DR6_BS: u32 = 1 << 14;

#[cfg(target_arch = "x86")]
mod imp {
    /// DR7 for slot 0: locally enabled (L0), on writes (R/W0 = 01), 4
    /// bytes (LEN0 = 11).
    const DR7_WRITE_WATCH_4: u32 = 1 | (0b01 << 16) | (0b11 << 18);

    /// What the last #DB was (the bits accumulate until cleared).
    pub fn dr6() -> u32 {
        let v: u32;
        // SAFETY: reading DR6 has no side effects.
        unsafe { core::arch::asm!("mov {}, dr6", out(reg) v, options(nomem, nostack, preserves_flags)) };
        v
    }

    /// Clears DR6's status bits.
    ///
    /// # Safety
    /// Ring 0. Changes nothing but the debug status.
    pub unsafe fn clear_dr6() {
        // SAFETY: the caller runs in ring 0; DR6 holds only status.
        unsafe { core::arch::asm!("mov dr6, {}", in(reg) 0u32, options(nomem, nostack, preserves_flags)) };
    }

    /// Traps (#DB) after every write to the 4 bytes at linear address
    /// `va` (4-aligned), in every address space.
    ///
    /// # Safety
    /// Ring 0, and a #DB from any ring must be handled: a write there by
    /// any code, the kernel's own included, now traps.
    pub unsafe fn watch_writes(va: u32) {
        assert!(va.is_multiple_of(4));
        // SAFETY: the caller handles the #DB this arms; DR0 before DR7, so
        // the watch never covers a stale address.
        unsafe {
            core::arch::asm!("mov dr0, {}", in(reg) va, options(nomem, nostack, preserves_flags));
            core::arch::asm!("mov dr7, {}", in(reg) DR7_WRITE_WATCH_4, options(nomem, nostack, preserves_flags));
        }
    }

    /// No watchpoint.
    ///
    /// # Safety
    /// Ring 0.
    pub unsafe fn unwatch() {
        // SAFETY: the caller runs in ring 0; disabling every breakpoint
        // only stops #DBs.
        unsafe { core::arch::asm!("mov dr7, {}", in(reg) 0u32, options(nomem, nostack, preserves_flags)) };
    }
}

#[cfg(not(target_arch = "x86"))]
mod imp {
    fn host(what: &str) -> ! {
        panic!("{what}: privileged i386 instruction called on the host")
    }
    pub fn dr6() -> u32 {
        host("read dr6")
    }
    /// # Safety
    /// Never: there are no debug registers on the host.
    pub unsafe fn clear_dr6() {
        host("write dr6")
    }
    /// # Safety
    /// Never: there are no debug registers on the host.
    pub unsafe fn watch_writes(_: u32) {
        host("write dr0/dr7")
    }
    /// # Safety
    /// Never: there are no debug registers on the host.
    pub unsafe fn unwatch() {
        host("write dr7")
    }
}

pub use imp::{clear_dr6, dr6, unwatch, watch_writes};
