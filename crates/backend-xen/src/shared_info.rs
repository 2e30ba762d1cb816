//! The shared info page: what Xen and the guest read and write without
//! hypercalls. Events pending and masked, the virtual interrupt flag, and
//! the time.
//!
//! The layout is the compat one (a 32-bit guest on a 64-bit Xen): Xen
//! uses it for every 32-bit PV guest, and for a PVH guest once that guest
//! wrote the hypercall-page MSR from 32-bit code (which `hvm.rs` does
//! before anything else).
//!
//! ```text
//!    0 vcpu_info[32], 64 bytes each; vCPU 0's:
//!        0 evtchn_upcall_pending   1 evtchn_upcall_mask   4 evtchn_pending_sel
//!        8 arch (cr2)             32 time (vcpu_time_info, see pvclock.rs)
//! 2048 evtchn_pending[32]   one bit per port, 1024 ports
//! 2176 evtchn_mask[32]
//! 2304 wc_version, 2308 wc_sec, 2312 wc_nsec   wall clock at system time 0
//! 2340 wc_sec_hi (in the arch part: no room in the generic structure)
//! ```
//!
//! Every access is atomic or volatile: Xen writes this page from other
//! CPUs at any time (pending bits, the time), and bit updates must be
//! locked read-modify-writes so a bit Xen sets between our read and write
//! is not lost.

use core::cell::UnsafeCell;
use core::sync::atomic::{fence, AtomicU32, AtomicU8, Ordering};

use once_cell::race::OnceNonZeroUsize;

use crate::pvclock::VcpuTime;

const UPCALL_PENDING: usize = 0;
const UPCALL_MASK: usize = 1;
const PENDING_SEL: usize = 4;
const TIME: usize = 32;
const EVTCHN_PENDING: usize = 2048;
const EVTCHN_MASK: usize = 2176;
const WC_VERSION: usize = 2304;
const WC_SEC: usize = 2308;
const WC_NSEC: usize = 2312;
const WC_SEC_HI: usize = 2340;

/// Event channel ports in the 2-level ABI (32 words of 32 bits).
pub const NR_PORTS: u32 = 1024;

/// A page of the image given up to shared_info: PV maps Xen's page over
/// it (`update_va_mapping`), PVH has Xen put the page at its frame
/// (`XENMEM_add_to_physmap`). Never read or written as a Rust value.
#[repr(C, align(4096))]
pub struct Frame(UnsafeCell<[u8; 4096]>);

// SAFETY: only its address is used, by one CPU.
unsafe impl Sync for Frame {}

pub static FRAME: Frame = Frame(UnsafeCell::new([0; 4096]));

impl Frame {
    pub fn addr(&self) -> usize {
        self.0.get() as usize
    }
}

/// Where shared_info is mapped, once it is.
pub struct SharedInfo {
    va: OnceNonZeroUsize,
}

impl Default for SharedInfo {
    fn default() -> Self {
        Self::new()
    }
}

impl SharedInfo {
    pub const fn new() -> SharedInfo {
        SharedInfo { va: OnceNonZeroUsize::new() }
    }

    /// # Safety
    /// `va` must map Xen's shared info page for the domain's life.
    pub unsafe fn set(&self, va: usize) {
        if let Some(va) = core::num::NonZeroUsize::new(va) {
            let _ = self.va.set(va);
        }
    }

    /// The page, if mapped. Before that Xen delivers nothing (it starts
    /// every vCPU with events masked).
    pub fn page(&self) -> Option<Page> {
        // SAFETY: only `set` stores an address, and its contract is Page's.
        // The address is one the kernel mapped itself, so it has no Rust
        // provenance to carry: an exposed-provenance cast is the honest one.
        self.va.get().map(|va| unsafe { Page::new(core::ptr::with_exposed_provenance_mut(va.get())) })
    }
}

/// The mapped page, vCPU 0's view.
#[derive(Clone, Copy)]
pub struct Page(*mut u8);

impl Page {
    /// # Safety
    /// `va` must map the shared info page for the rest of the domain's
    /// life. A pointer, not an address, so a host test's page keeps its
    /// provenance (Miri flagged the old usize-to-pointer cast).
    pub unsafe fn new(va: *mut u8) -> Page {
        Page(va)
    }

    fn byte(self, off: usize) -> &'static AtomicU8 {
        // SAFETY: `off` is inside the page, which stays mapped (Page's
        // invariant); AtomicU8 has the layout of u8.
        unsafe { AtomicU8::from_ptr(self.0.add(off)) }
    }

    fn word(self, off: usize) -> &'static AtomicU32 {
        debug_assert!(off.is_multiple_of(4));
        // SAFETY: as in `byte`; every word offset used is 4-aligned.
        unsafe { AtomicU32::from_ptr(self.0.add(off) as *mut u32) }
    }

    pub fn upcall_mask(self) -> bool {
        self.byte(UPCALL_MASK).load(Ordering::Relaxed) != 0
    }

    /// The virtual interrupt flag. The compiler must not move memory
    /// accesses across it (they are what it protects): a fence, which on
    /// x86 costs no instruction for these orderings.
    pub fn set_upcall_mask(self, masked: bool) {
        fence(Ordering::SeqCst);
        self.byte(UPCALL_MASK).store(masked as u8, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    pub fn upcall_pending(self) -> bool {
        self.byte(UPCALL_PENDING).load(Ordering::Relaxed) != 0
    }

    pub fn clear_upcall_pending(self) {
        self.byte(UPCALL_PENDING).store(0, Ordering::SeqCst);
    }

    pub fn set_upcall_pending(self) {
        self.byte(UPCALL_PENDING).store(1, Ordering::SeqCst);
    }

    /// Takes the words that have pending ports (xchg: Xen may be setting
    /// bits right now).
    pub fn take_pending_sel(self) -> u32 {
        self.word(PENDING_SEL).swap(0, Ordering::SeqCst)
    }

    pub fn mark_pending_sel(self, word: u32) -> bool {
        self.word(PENDING_SEL).fetch_or(1 << word, Ordering::SeqCst) & (1 << word) != 0
    }

    /// Pending and unmasked ports in word `i`.
    pub fn deliverable(self, i: u32) -> u32 {
        let pending = self.word(EVTCHN_PENDING + 4 * i as usize).load(Ordering::SeqCst);
        let mask = self.word(EVTCHN_MASK + 4 * i as usize).load(Ordering::SeqCst);
        pending & !mask
    }

    /// Clears `port`'s pending bit (the guest's job, before handling it,
    /// so an event arriving during the handler is seen again).
    pub fn clear_pending(self, port: u32) {
        self.word(EVTCHN_PENDING + 4 * (port / 32) as usize).fetch_and(!(1 << (port % 32)), Ordering::SeqCst);
    }

    pub fn is_pending(self, port: u32) -> bool {
        self.word(EVTCHN_PENDING + 4 * (port / 32) as usize).load(Ordering::SeqCst) & (1 << (port % 32)) != 0
    }

    /// What Xen does to raise `port`, for host tests.
    #[cfg(test)]
    pub fn set_pending_for_test(self, port: u32) {
        self.word(EVTCHN_PENDING + 4 * (port / 32) as usize).fetch_or(1 << (port % 32), Ordering::SeqCst);
    }

    pub fn mask_all(self) {
        for i in 0..NR_PORTS / 32 {
            self.word(EVTCHN_MASK + 4 * i as usize).store(!0, Ordering::SeqCst);
        }
    }

    pub fn set_mask(self, port: u32, masked: bool) {
        let w = self.word(EVTCHN_MASK + 4 * (port / 32) as usize);
        if masked {
            w.fetch_or(1 << (port % 32), Ordering::SeqCst);
        } else {
            w.fetch_and(!(1 << (port % 32)), Ordering::SeqCst);
        }
    }

    /// vCPU 0's time, read under its version protocol.
    pub fn time(self) -> VcpuTime {
        // SAFETY: the time structure is inside the page (Page's invariant).
        unsafe { VcpuTime::read(self.0.add(TIME)) }
    }

    /// The wall clock at system time 0: (seconds, nanoseconds), read under
    /// `wc_version` (odd while Xen writes).
    pub fn wallclock_base(self) -> (u64, u32) {
        loop {
            let v = self.word(WC_VERSION).load(Ordering::SeqCst);
            let sec = self.word(WC_SEC).load(Ordering::SeqCst) as u64;
            let hi = self.word(WC_SEC_HI).load(Ordering::SeqCst) as u64;
            let nsec = self.word(WC_NSEC).load(Ordering::SeqCst);
            if v & 1 == 0 && self.word(WC_VERSION).load(Ordering::SeqCst) == v {
                return (hi << 32 | sec, nsec);
            }
        }
    }
}
