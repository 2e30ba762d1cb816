//! Units that must not be mixed up: page frame numbers, physical and
//! virtual addresses.

use core::fmt;

pub const PAGE_SHIFT: u32 = 12;
pub const PAGE_SIZE: u32 = 1 << PAGE_SHIFT;

/// A page frame number: physical address >> 12. Under Xen PV this is the
/// guest's pseudo-physical frame; the machine frame is a separate number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pfn(pub u32);

/// A physical address. 64 bits wide because PAE reaches beyond 4 GiB.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PhysAddr(pub u64);

/// A 32-bit virtual address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct VirtAddr(pub u32);

impl Pfn {
    pub const fn addr(self) -> PhysAddr {
        PhysAddr((self.0 as u64) << PAGE_SHIFT)
    }
    pub const fn add(self, n: u32) -> Pfn {
        Pfn(self.0 + n)
    }
}

impl PhysAddr {
    /// The frame holding this address.
    pub const fn pfn(self) -> Pfn {
        Pfn((self.0 >> PAGE_SHIFT) as u32)
    }
    /// The first frame at or above this address.
    pub const fn pfn_up(self) -> Pfn {
        Pfn(((self.0 + PAGE_SIZE as u64 - 1) >> PAGE_SHIFT) as u32)
    }
}

impl fmt::Debug for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pfn {:#x}", self.0)
    }
}
impl fmt::Display for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}
impl fmt::Debug for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pa {:#x}", self.0)
    }
}
impl fmt::Display for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}
impl fmt::Debug for VirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "va {:#010x}", self.0)
    }
}
impl fmt::Display for VirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pfn_round_trip() {
        assert_eq!(PhysAddr(0x1234_5678).pfn(), Pfn(0x12345));
        assert_eq!(PhysAddr(0x1234_5678).pfn_up(), Pfn(0x12346));
        assert_eq!(PhysAddr(0x1234_5000).pfn_up(), Pfn(0x12345));
        assert_eq!(Pfn(0x12345).addr(), PhysAddr(0x1234_5000));
        // PAE frames above 4 GiB keep their high bits.
        assert_eq!(Pfn(0x10_0000).addr(), PhysAddr(0x1_0000_0000));
    }
}
