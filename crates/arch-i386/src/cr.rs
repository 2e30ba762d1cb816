//! Control registers, EFER and TLB invalidation.
//!
//! These execute privileged instructions: ring 0 only. Under a PV
//! hypervisor (Xen PV, lguest) the kernel runs in ring 1 and these fault,
//! which is exactly why the `Hypervisor` trait routes them.
//!
//! On the host (tests) they panic: host tests use backends that never
//! touch real hardware.

pub const CR0_WP: u32 = 1 << 16;
pub const CR0_PG: u32 = 1 << 31;
pub const CR4_PSE: u32 = 1 << 4;
pub const CR4_PAE: u32 = 1 << 5;
pub const CR4_PGE: u32 = 1 << 7;
pub const EFER_NXE: u64 = 1 << 11;

#[cfg(target_arch = "x86")]
mod imp {
    use x86::controlregs::{Cr0, Cr4};
    use x86::msr::IA32_EFER;

    pub fn read_cr0() -> u32 {
        // SAFETY: reading CR0 has no side effects (ring 0 only).
        unsafe { x86::controlregs::cr0().bits() as u32 }
    }
    pub fn write_cr0(v: u32) {
        // SAFETY: callers change only bits whose effect they own (WP).
        unsafe { x86::controlregs::cr0_write(Cr0::from_bits_truncate(v as usize)) }
    }
    pub fn read_cr2() -> u32 {
        // SAFETY: reading CR2 has no side effects.
        unsafe { x86::controlregs::cr2() as u32 }
    }
    pub fn read_cr3() -> u32 {
        // SAFETY: reading CR3 has no side effects.
        unsafe { x86::controlregs::cr3() as u32 }
    }
    pub fn write_cr3(v: u32) {
        // SAFETY: the caller passes the physical address of a complete
        // pagetable that maps the code and stack in use.
        unsafe { x86::controlregs::cr3_write(v as u64) }
    }
    pub fn read_cr4() -> u32 {
        // SAFETY: reading CR4 has no side effects. CR4 exists on every CPU
        // that has CPUID leaf 1; callers check that first.
        unsafe { x86::controlregs::cr4().bits() as u32 }
    }
    pub fn write_cr4(v: u32) {
        // SAFETY: callers set only feature bits the CPU reported.
        unsafe { x86::controlregs::cr4_write(Cr4::from_bits_truncate(v as usize)) }
    }
    pub fn read_efer() -> u64 {
        // SAFETY: EFER exists when CPUID reports NX, the only caller's case.
        unsafe { x86::msr::rdmsr(IA32_EFER) }
    }
    pub fn write_efer(v: u64) {
        // SAFETY: as above; only NXE is changed.
        unsafe { x86::msr::wrmsr(IA32_EFER, v) }
    }
    pub fn invlpg(va: u32) {
        // SAFETY: dropping a TLB entry is always safe.
        unsafe { x86::tlb::flush(va as usize) }
    }
}

#[cfg(not(target_arch = "x86"))]
mod imp {
    fn host(what: &str) -> ! {
        panic!("{what}: privileged i386 instruction called on the host")
    }
    pub fn read_cr0() -> u32 {
        host("read_cr0")
    }
    pub fn write_cr0(_: u32) {
        host("write_cr0")
    }
    pub fn read_cr2() -> u32 {
        host("read_cr2")
    }
    pub fn read_cr3() -> u32 {
        host("read_cr3")
    }
    pub fn write_cr3(_: u32) {
        host("write_cr3")
    }
    pub fn read_cr4() -> u32 {
        host("read_cr4")
    }
    pub fn write_cr4(_: u32) {
        host("write_cr4")
    }
    pub fn read_efer() -> u64 {
        host("rdmsr")
    }
    pub fn write_efer(_: u64) {
        host("wrmsr")
    }
    pub fn invlpg(_: u32) {
        host("invlpg")
    }
}

pub use imp::*;

/// Writes a model-specific register.
///
/// # Safety
/// `msr` must exist and `val` be valid for it; writing some MSRs changes
/// how the CPU (or the hypervisor under it) behaves.
#[cfg(target_arch = "x86")]
pub unsafe fn wrmsr(msr: u32, val: u64) {
    // SAFETY: forwarded to the caller.
    unsafe { x86::msr::wrmsr(msr, val) }
}

/// # Safety
/// Never: there are no MSRs on the host.
#[cfg(not(target_arch = "x86"))]
pub unsafe fn wrmsr(_: u32, _: u64) {
    panic!("wrmsr called on the host")
}
