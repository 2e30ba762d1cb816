//! Control registers, EFER and TLB invalidation, typed.
//!
//! These execute privileged instructions: ring 0 only. Under a PV
//! hypervisor (Xen PV, lguest) the kernel runs in ring 1 and these fault,
//! which is exactly why the `Hypervisor` trait routes them.
//!
//! As in rust-osdev's `x86_64`: reading is safe (it has no effect, and in
//! the wrong ring it faults, which is a report, not undefined behaviour);
//! writing is an `unsafe fn`, because a wrong CR0, CR3, CR4 or EFER can
//! unmap the code that runs or change what every pointer means. Values are
//! flag types or frames, never bare integers.
//!
//! On the host (tests) every access panics: host tests use backends that
//! never touch real hardware.

use bitflags::bitflags;

use crate::{PhysAddr, VirtAddr};

bitflags! {
    /// CR0 bits the kernel looks at.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub struct Cr0Flags: u32 {
        const PE = 1 << 0;
        const MP = 1 << 1;
        const EM = 1 << 2;
        /// Task switched: the next FPU instruction traps (#NM).
        const TS = 1 << 3;
        const ET = 1 << 4;
        const NE = 1 << 5;
        /// Write protection applies to rings 0-2 too.
        const WP = 1 << 16;
        const AM = 1 << 18;
        const NW = 1 << 29;
        const CD = 1 << 30;
        const PG = 1 << 31;
    }
}

bitflags! {
    /// CR4 bits the kernel looks at.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub struct Cr4Flags: u32 {
        const VME = 1 << 0;
        const PVI = 1 << 1;
        const TSD = 1 << 2;
        const DE = 1 << 3;
        /// 4 MiB pages in 2-level paging.
        const PSE = 1 << 4;
        const PAE = 1 << 5;
        const MCE = 1 << 6;
        /// Global pages.
        const PGE = 1 << 7;
        const PCE = 1 << 8;
        const OSFXSR = 1 << 9;
        const OSXMMEXCPT = 1 << 10;
    }
}

bitflags! {
    /// The extended feature enable register.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub struct EferFlags: u64 {
        const SCE = 1 << 0;
        const LME = 1 << 8;
        const LMA = 1 << 10;
        /// The NX bit of PAE entries means something.
        const NXE = 1 << 11;
    }
}

/// The MSR number of EFER.
pub const IA32_EFER: u32 = 0xC000_0080;

pub struct Cr0;
pub struct Cr2;
pub struct Cr3;
pub struct Cr4;
pub struct Efer;

#[cfg(target_arch = "x86")]
mod imp {
    use super::*;

    impl Cr0 {
        pub fn read() -> Cr0Flags {
            let v: u32;
            // SAFETY: reading CR0 has no side effects.
            unsafe { core::arch::asm!("mov {}, cr0", out(reg) v, options(nomem, nostack, preserves_flags)) };
            Cr0Flags::from_bits_retain(v)
        }
        /// # Safety
        /// Paging, protection and caching must stay what the running code
        /// relies on; callers change only the bits whose effect they own.
        pub unsafe fn write(f: Cr0Flags) {
            // SAFETY: forwarded to the caller.
            unsafe { core::arch::asm!("mov cr0, {}", in(reg) f.bits(), options(nostack, preserves_flags)) };
        }
    }

    impl Cr2 {
        /// The linear address of the last page fault.
        pub fn read() -> VirtAddr {
            let v: u32;
            // SAFETY: reading CR2 has no side effects.
            unsafe { core::arch::asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) };
            VirtAddr(v)
        }
    }

    impl Cr3 {
        /// The physical address of the live top-level pagetable.
        pub fn read() -> PhysAddr {
            let v: u32;
            // SAFETY: reading CR3 has no side effects.
            unsafe { core::arch::asm!("mov {}, cr3", out(reg) v, options(nomem, nostack, preserves_flags)) };
            PhysAddr(v as u64 & !0xFFF)
        }
        /// Loads a new top-level pagetable (and flushes non-global TLB
        /// entries).
        ///
        /// # Safety
        /// `root` must be a complete pagetable in the current paging
        /// format that maps the code, stack and data in use at the same
        /// addresses.
        pub unsafe fn write(root: PhysAddr) {
            // SAFETY: forwarded to the caller.
            unsafe {
                core::arch::asm!("mov cr3, {}", in(reg) root.0 as u32, options(nostack, preserves_flags))
            };
        }
    }

    impl Cr4 {
        pub fn read() -> Cr4Flags {
            let v: u32;
            // SAFETY: reading CR4 has no side effects (CR4 exists on every
            // CPU with CPUID leaf 1, which the kernel requires).
            unsafe { core::arch::asm!("mov {}, cr4", out(reg) v, options(nomem, nostack, preserves_flags)) };
            Cr4Flags::from_bits_retain(v)
        }
        /// # Safety
        /// Only features the CPU reported may be set, and PAE must not
        /// change while paging is on.
        pub unsafe fn write(f: Cr4Flags) {
            // SAFETY: forwarded to the caller.
            unsafe { core::arch::asm!("mov cr4, {}", in(reg) f.bits(), options(nostack, preserves_flags)) };
        }
    }

    impl Efer {
        /// Faults (#GP) on a CPU without EFER: callers check CPUID's NX or
        /// long-mode bit first.
        pub fn read() -> EferFlags {
            // SAFETY: rdmsr of EFER has no side effects.
            EferFlags::from_bits_retain(unsafe { x86::msr::rdmsr(IA32_EFER) })
        }
        /// # Safety
        /// EFER must exist, and the change must not alter what live
        /// pagetable entries mean for code in use (setting NXE is safe only
        /// while no entry has bit 63 set where execution is needed).
        pub unsafe fn write(f: EferFlags) {
            // SAFETY: forwarded to the caller.
            unsafe { x86::msr::wrmsr(IA32_EFER, f.bits()) }
        }
    }

    /// Drops the TLB entry for `va`. Always safe: the next access walks the
    /// pagetable again.
    pub fn invlpg(va: VirtAddr) {
        // SAFETY: invalidating a TLB entry cannot break memory safety.
        unsafe { core::arch::asm!("invlpg [{}]", in(reg) va.0, options(nostack, preserves_flags)) };
    }

    /// Writes a model-specific register.
    ///
    /// # Safety
    /// `msr` must exist and `val` be valid for it; writing some MSRs
    /// changes how the CPU (or the hypervisor under it) behaves.
    pub unsafe fn wrmsr(msr: u32, val: u64) {
        // SAFETY: forwarded to the caller.
        unsafe { x86::msr::wrmsr(msr, val) }
    }

    /// Reads a model-specific register; faults if it does not exist.
    pub fn rdmsr(msr: u32) -> u64 {
        // SAFETY: reading an MSR has no side effects (a missing one faults).
        unsafe { x86::msr::rdmsr(msr) }
    }
}

#[cfg(not(target_arch = "x86"))]
mod imp {
    use super::*;

    fn host(what: &str) -> ! {
        panic!("{what}: privileged i386 instruction called on the host")
    }
    impl Cr0 {
        pub fn read() -> Cr0Flags {
            host("read cr0")
        }
        /// # Safety
        /// Never: there is no CR0 on the host.
        pub unsafe fn write(_: Cr0Flags) {
            host("write cr0")
        }
    }
    impl Cr2 {
        pub fn read() -> VirtAddr {
            host("read cr2")
        }
    }
    impl Cr3 {
        pub fn read() -> PhysAddr {
            host("read cr3")
        }
        /// # Safety
        /// Never: there is no CR3 on the host.
        pub unsafe fn write(_: PhysAddr) {
            host("write cr3")
        }
    }
    impl Cr4 {
        pub fn read() -> Cr4Flags {
            host("read cr4")
        }
        /// # Safety
        /// Never: there is no CR4 on the host.
        pub unsafe fn write(_: Cr4Flags) {
            host("write cr4")
        }
    }
    impl Efer {
        pub fn read() -> EferFlags {
            host("rdmsr EFER")
        }
        /// # Safety
        /// Never: there is no EFER on the host.
        pub unsafe fn write(_: EferFlags) {
            host("wrmsr EFER")
        }
    }
    pub fn invlpg(_: VirtAddr) {
        host("invlpg")
    }
    /// # Safety
    /// Never: there are no MSRs on the host.
    pub unsafe fn wrmsr(_: u32, _: u64) {
        host("wrmsr")
    }
    pub fn rdmsr(_: u32) -> u64 {
        host("rdmsr")
    }
}

pub use imp::*;
