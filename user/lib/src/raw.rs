//! The trap itself: `int 0x80`, the call number in eax, arguments in ebx,
//! ecx, edx and esi, the result in eax (`user_abi`). Every other register
//! comes back unchanged, so these declare only eax as clobbered.
//!
//! The functions are `unsafe`: an argument may be a pointer the kernel
//! reads or writes (WRITE, WAIT, SPAWN), or memory it takes away (MUNMAP);
//! the typed wrappers in this crate are where each is made sound.

#[cfg(all(target_arch = "x86", target_os = "none"))]
mod trap {
    use core::arch::asm;

    /// # Safety
    /// The call must not break a Rust invariant (see the module doc).
    pub unsafe fn syscall0(nr: u32) -> u32 {
        let ret;
        // SAFETY: the kernel preserves every register but eax and touches
        // no memory for this call unless `nr` says so, which the caller
        // answers for.
        unsafe { asm!("int 0x80", inlateout("eax") nr => ret, options(nostack)) };
        ret
    }

    /// # Safety
    /// As for `syscall0`.
    pub unsafe fn syscall1(nr: u32, a: u32) -> u32 {
        let ret;
        // SAFETY: as in syscall0.
        unsafe { asm!("int 0x80", inlateout("eax") nr => ret, in("ebx") a, options(nostack)) };
        ret
    }

    /// # Safety
    /// As for `syscall0`.
    pub unsafe fn syscall2(nr: u32, a: u32, b: u32) -> u32 {
        let ret;
        // SAFETY: as in syscall0.
        unsafe { asm!("int 0x80", inlateout("eax") nr => ret, in("ebx") a, in("ecx") b, options(nostack)) };
        ret
    }

    /// # Safety
    /// As for `syscall0`.
    pub unsafe fn syscall3(nr: u32, a: u32, b: u32, c: u32) -> u32 {
        let ret;
        // SAFETY: as in syscall0.
        unsafe {
            asm!("int 0x80", inlateout("eax") nr => ret, in("ebx") a, in("ecx") b, in("edx") c, options(nostack))
        };
        ret
    }

    /// # Safety
    /// As for `syscall0`.
    pub unsafe fn syscall4(nr: u32, a: u32, b: u32, c: u32, d: u32) -> u32 {
        let ret;
        // LLVM keeps esi for itself on i686 (a base pointer), so it cannot
        // be an operand: the fourth argument rides in edi and is swapped
        // into esi around the trap, and both are back as they were after.
        // SAFETY: as in syscall0; the two exchanges leave esi and edi as
        // they found them.
        unsafe {
            asm!(
                "xchg esi, edi",
                "int 0x80",
                "xchg esi, edi",
                inlateout("eax") nr => ret,
                in("ebx") a,
                in("ecx") b,
                in("edx") c,
                in("edi") d,
                options(nostack),
            )
        };
        ret
    }

    /// Stops the process with an invalid-opcode fault (the kernel reports
    /// it as `status::faulted(6)`).
    pub fn invalid_opcode() -> ! {
        // SAFETY: `ud2` raises #UD and never completes: if the kernel
        // resumed the process, it would resume at the same `ud2`.
        unsafe { asm!("ud2", options(noreturn, nomem, nostack)) }
    }
}

/// Off the pvops kernel (the host, where the library's unit tests run)
/// there is nobody to trap to: every call fails with ENOSYS.
#[cfg(not(all(target_arch = "x86", target_os = "none")))]
mod trap {
    const ENOSYS: u32 = (-user_abi::errno::ENOSYS) as u32;

    /// # Safety
    /// Nothing to uphold here; `unsafe` to match the real trap.
    pub unsafe fn syscall0(_: u32) -> u32 {
        ENOSYS
    }
    /// # Safety
    /// As for `syscall0`.
    pub unsafe fn syscall1(_: u32, _: u32) -> u32 {
        ENOSYS
    }
    /// # Safety
    /// As for `syscall0`.
    pub unsafe fn syscall2(_: u32, _: u32, _: u32) -> u32 {
        ENOSYS
    }
    /// # Safety
    /// As for `syscall0`.
    pub unsafe fn syscall3(_: u32, _: u32, _: u32, _: u32) -> u32 {
        ENOSYS
    }
    /// # Safety
    /// As for `syscall0`.
    pub unsafe fn syscall4(_: u32, _: u32, _: u32, _: u32, _: u32) -> u32 {
        ENOSYS
    }
    pub fn invalid_opcode() -> ! {
        panic!("invalid_opcode: only a pvops process can be stopped this way")
    }
}

pub use trap::*;
