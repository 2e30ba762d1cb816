//! Host-physical memory as the host reaches it.
//!
//! On the machine the host's head code identity-maps the first 1 GiB, so a
//! host-physical address is its own pointer. In host tests the "machine"
//! is a buffer, and physical address `pa` lives at `buffer + (pa - base)`.
//! Guest memory, the shadow pool and everything the host reads or writes
//! for the guest go through this one translation.

#[derive(Clone, Copy, Debug)]
pub struct HostPhys {
    /// Added to a host-physical address to get a pointer.
    origin: usize,
}

impl HostPhys {
    /// # Safety
    /// Every host-physical address the host will use (guest memory, the
    /// shadow pool) must be mapped, readable and writable, at
    /// `origin + pa`, and its provenance exposed, for as long as the value
    /// is used.
    pub const unsafe fn new(origin: usize) -> HostPhys {
        HostPhys { origin }
    }

    /// A pointer to host-physical `pa`.
    pub fn ptr(&self, pa: u32) -> *mut u8 {
        core::ptr::with_exposed_provenance_mut(self.origin.wrapping_add(pa as usize))
    }
}
