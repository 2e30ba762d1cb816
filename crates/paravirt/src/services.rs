//! What the kernel offers its backend once its own pagetable is live.
//!
//! Early hooks get the boot information; later ones may need the kernel's
//! memory management: a device's registers mapped uncached (the local
//! APIC's page, a PVH guest's console ring above the direct map). A
//! backend asks for a mapping by purpose; the kernel owns the address
//! (a fixmap slot per purpose, as Linux's `FIX_APIC_BASE`).

use crate::HvError;

/// Why a backend wants a page mapped: one fixed virtual page each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevicePage {
    /// The local APIC's registers.
    Lapic,
    /// A hypervisor console ring outside the direct map.
    Console,
}

pub trait Services {
    /// Maps the page at physical address `phys` (page aligned) for
    /// `what`, not executable, uncached if `what` is a device's registers;
    /// returns its virtual address.
    /// Mapping the same purpose again replaces the old mapping.
    fn map_device(&self, what: DevicePage, phys: u64) -> Result<usize, HvError>;
}
