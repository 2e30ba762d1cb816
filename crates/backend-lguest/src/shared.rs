//! The guest's copy of `struct lguest_data`: a static in the kernel image
//! whose guest-physical address LGUEST_INIT hands to the host.
//!
//! The host writes some of its fields (cr2, the ring's status bytes,
//! reserve_mem, pgdir) while the guest is stopped in a hypercall or a trap,
//! behind the compiler's back: so every access is volatile, through a raw
//! pointer, never through a Rust reference.

use core::cell::UnsafeCell;

use arch_i386::layout::PAGE_OFFSET;

use crate::abi::{HcallArgs, LguestData, RING_SIZE, STATUS_PENDING};
use crate::ring::Slots;

#[repr(C, align(64))]
pub struct Shared(UnsafeCell<LguestData>);

// SAFETY: one CPU; the host only touches the page while the guest is
// stopped, and all guest accesses are volatile.
unsafe impl Sync for Shared {}

pub static LGUEST_DATA: Shared = Shared(UnsafeCell::new(LguestData::INIT));

/// A raw pointer to one field of the shared page: `field!(cr2)`.
macro_rules! field {
    ($field:ident) => {
        // SAFETY: the pointer is derived from the static and stays inside it.
        unsafe { core::ptr::addr_of_mut!((*$crate::shared::LGUEST_DATA.ptr()).$field) }
    };
}
pub(crate) use field;

impl Shared {
    pub fn ptr(&self) -> *mut LguestData {
        self.0.get()
    }

    /// The guest-physical address the host knows it by (`__pa`).
    pub fn pa(&self) -> u32 {
        (self.ptr() as usize as u32).wrapping_sub(PAGE_OFFSET)
    }

    pub fn read(&self, f: *mut u32) -> u32 {
        // SAFETY: `f` points at a field of the static (see `field!`).
        unsafe { f.read_volatile() }
    }

    pub fn write(&self, f: *mut u32, v: u32) {
        // SAFETY: as above.
        unsafe { f.write_volatile(v) }
    }
}

/// The ring slots of the shared page.
pub struct SharedSlots;

impl Slots for SharedSlots {
    fn status(&self, i: usize) -> u8 {
        assert!(i < RING_SIZE);
        // SAFETY: i < RING_SIZE: inside the static's status array.
        unsafe { core::ptr::addr_of!((*LGUEST_DATA.ptr()).hcall_status[i]).read_volatile() }
    }

    fn post(&mut self, i: usize, call: HcallArgs) {
        assert!(i < RING_SIZE);
        // SAFETY: i < RING_SIZE. The arguments are written before the
        // status byte marks the slot pending; the fence keeps the compiler
        // from reordering them (one CPU: program order is enough).
        unsafe {
            core::ptr::addr_of_mut!((*LGUEST_DATA.ptr()).hcalls[i]).write_volatile(call);
            core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
            core::ptr::addr_of_mut!((*LGUEST_DATA.ptr()).hcall_status[i]).write_volatile(STATUS_PENDING);
        }
    }
}
