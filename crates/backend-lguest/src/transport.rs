//! The seam between the backend and the host: a trap into the host, and
//! the page the two share.
//!
//! In the kernel a hypercall is `int $0x1f` ([`Trap`]) and the shared page
//! is the kernel's static `lguest_data` ([`crate::shared`]). On the host, a
//! fake host plays the other side (it drains the async ring in order,
//! records every call), so the ring, the batching and the pagetable hooks
//! are tested by `cargo test`.

use crate::abi::LguestData;

pub trait Host: Sync + 'static {
    /// A synchronous hypercall: `int $0x1f` with the call in eax and its
    /// arguments in edx, ebx, ecx. The host drains the async ring first.
    fn trap(&self, call: u32, arg1: u32, arg2: u32, arg3: u32) -> u32;

    /// The guest's `lguest_data`.
    fn data(&self) -> *mut LguestData;

    /// Its guest-physical address, for LGUEST_INIT.
    fn data_pa(&self) -> u32;
}

/// The real host: `int $0x1f`.
pub struct Trap;

impl Host for Trap {
    #[cfg(target_arch = "x86")]
    fn trap(&self, call: u32, arg1: u32, arg2: u32, arg3: u32) -> u32 {
        let ret: u32;
        // SAFETY: `int $0x1f` enters the host, which reads the registers and
        // may write guest memory (lguest_data, nothing else we own); it
        // returns with every register but eax preserved. Only ebx has to be
        // passed around LLVM, which may use it itself.
        unsafe {
            core::arch::asm!(
                "xchg {b}, ebx",
                "int 0x1f",
                "xchg {b}, ebx",
                b = inout(reg) arg2 => _,
                inout("eax") call => ret,
                in("edx") arg1,
                in("ecx") arg3,
            );
        }
        ret
    }

    #[cfg(not(target_arch = "x86"))]
    fn trap(&self, call: u32, _: u32, _: u32, _: u32) -> u32 {
        panic!("lguest hypercall {call} on the host")
    }

    fn data(&self) -> *mut LguestData {
        crate::shared::LGUEST_DATA.ptr()
    }

    fn data_pa(&self) -> u32 {
        crate::shared::LGUEST_DATA.pa()
    }
}
