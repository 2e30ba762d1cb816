//! The guest's `struct lguest_data`: a static in the kernel image whose
//! guest-physical address LGUEST_INIT hands to the host, and how it is
//! read and written.
//!
//! The host writes some of its fields (cr2, time, the ring's status bytes,
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

impl Shared {
    pub fn ptr(&self) -> *mut LguestData {
        self.0.get()
    }

    /// The guest-physical address the host knows it by (`__pa`).
    pub fn pa(&self) -> u32 {
        (self.ptr() as usize as u32).wrapping_sub(PAGE_OFFSET)
    }
}

/// A word of `lguest_data` at byte offset `off` (one of `abi::off`).
#[derive(Clone, Copy)]
pub struct Data(*mut LguestData);

impl Data {
    /// # Safety
    /// `p` must point at a live `LguestData` for as long as the value is
    /// used.
    pub unsafe fn new(p: *mut LguestData) -> Data {
        Data(p)
    }

    fn word(&self, off: u32) -> *mut u32 {
        assert!(off.is_multiple_of(4) && off < crate::abi::off::SIZE, "lguest_data offset {off}");
        // SAFETY: `off` is inside the structure (checked) and 4-aligned.
        unsafe { (self.0 as *mut u8).add(off as usize) as *mut u32 }
    }

    pub fn read(&self, off: u32) -> u32 {
        // SAFETY: a word inside the live structure (`word`'s check and the
        // constructor's contract).
        unsafe { self.word(off).read_volatile() }
    }

    pub fn write(&self, off: u32, v: u32) {
        // SAFETY: as above.
        unsafe { self.word(off).write_volatile(v) }
    }

    pub fn slots(&self) -> SharedSlots {
        SharedSlots(self.0)
    }
}

/// The ring slots of a shared page.
pub struct SharedSlots(*mut LguestData);

impl Slots for SharedSlots {
    fn status(&self, i: usize) -> u8 {
        assert!(i < RING_SIZE);
        // SAFETY: i < RING_SIZE: inside the structure's status array (the
        // page is live: `Data::new`'s contract).
        unsafe { core::ptr::addr_of!((*self.0).hcall_status[i]).read_volatile() }
    }

    fn post(&mut self, i: usize, call: HcallArgs) {
        assert!(i < RING_SIZE);
        // SAFETY: i < RING_SIZE. The arguments are written before the
        // status byte marks the slot pending; the fence keeps the compiler
        // from reordering them (one CPU: program order is enough).
        unsafe {
            core::ptr::addr_of_mut!((*self.0).hcalls[i]).write_volatile(call);
            core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
            core::ptr::addr_of_mut!((*self.0).hcall_status[i]).write_volatile(STATUS_PENDING);
        }
    }
}
