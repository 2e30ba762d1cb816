//! The backend registry and the choice among its entries.
//!
//! Each backend crate adds itself to [`HYPERVISORS`]. linkme gives no order
//! (it changed under LTO), so candidates are sorted: detected ones by
//! priority, then by name; the kernel logs them all with their verdicts.

use core::fmt;

use linkme::distributed_slice;

use crate::{BootInfo, Hypervisor, Verdict};

/// Every backend linked into this image.
#[distributed_slice]
pub static HYPERVISORS: [&'static dyn Hypervisor];

/// Most backends one image may hold.
pub const MAX_BACKENDS: usize = 16;

/// The registry, each entry with its verdict, in decision order.
pub struct Candidates<'a> {
    list: [Option<(&'a dyn Hypervisor, Verdict)>; MAX_BACKENDS],
    len: usize,
}

impl<'a> Candidates<'a> {
    pub fn iter(&self) -> impl Iterator<Item = (&'a dyn Hypervisor, Verdict)> + '_ {
        self.list[..self.len].iter().flatten().copied()
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn find(&self, name: &str) -> Option<(&'a dyn Hypervisor, Verdict)> {
        self.iter().find(|(h, _)| h.name() == name)
    }
    /// The best detected backend, ignoring any override.
    pub fn best(&self) -> Option<&'a dyn Hypervisor> {
        self.iter().find(|(_, v)| v.is_ok()).map(|(h, _)| h)
    }
}

impl fmt::Display for Candidates<'_> {
    /// "native, xen, lguest"
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (h, _)) in self.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{}", h.name())?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectError<'b> {
    /// No backend was linked in: the image was built without any.
    Empty,
    TooMany,
    /// `hypervisor=NAME` names no registered backend.
    Unknown(&'b str),
    /// `hypervisor=NAME` names a backend that does not detect its platform.
    NotDetected(&'b str, &'static str),
    /// Nothing detected (not even native, which refuses PV entries).
    NoneDetected,
}

/// Asks every backend in `registry` about `boot` and sorts the answers.
pub fn evaluate<'a>(
    registry: &[&'a dyn Hypervisor],
    boot: &BootInfo,
) -> Result<Candidates<'a>, SelectError<'static>> {
    if registry.is_empty() {
        return Err(SelectError::Empty);
    }
    if registry.len() > MAX_BACKENDS {
        return Err(SelectError::TooMany);
    }
    let mut c = Candidates { list: [None; MAX_BACKENDS], len: registry.len() };
    for (slot, h) in c.list.iter_mut().zip(registry) {
        *slot = Some((*h, h.detect(boot)));
    }
    // Detected first, by priority (high first), then by name; undetected by
    // name. Insertion sort: a handful of entries, no allocator.
    let key = |e: &Option<(&dyn Hypervisor, Verdict)>| {
        let (h, v) = e.unwrap();
        let rank = match v {
            Ok(d) => 255 - d.priority as u16,
            Err(_) => 256,
        };
        (rank, h.name())
    };
    for i in 1..c.len {
        let mut j = i;
        while j > 0 && key(&c.list[j - 1]) > key(&c.list[j]) {
            c.list.swap(j - 1, j);
            j -= 1;
        }
    }
    Ok(c)
}

/// Picks the backend: `forced` (from `hypervisor=`) if given, else the
/// highest-priority detected one.
pub fn select<'a, 'b>(
    c: &Candidates<'a>,
    forced: Option<&'b str>,
) -> Result<&'a dyn Hypervisor, SelectError<'b>> {
    match forced {
        Some(name) => match c.find(name) {
            None => Err(SelectError::Unknown(name)),
            Some((h, Ok(_))) => Ok(h),
            Some((_, Err(why))) => Err(SelectError::NotDetected(name, why)),
        },
        None => c.best().ok_or(SelectError::NoneDetected),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BootProtocol, Detected};
    use arch_i386::PhysAddr;

    struct Fake(&'static str, Option<u8>);
    impl Hypervisor for Fake {
        fn name(&self) -> &'static str {
            self.0
        }
        fn detect(&self, _: &BootInfo) -> Verdict {
            self.1.map(|priority| Detected { priority, why: "fake" }).ok_or("absent")
        }
    }

    static NATIVE: Fake = Fake("native", Some(0));
    static XEN: Fake = Fake("xen", Some(100));
    static HVM: Fake = Fake("xen-hvm", Some(50));
    static LGUEST: Fake = Fake("lguest", None);

    fn boot() -> BootInfo {
        BootInfo::new(BootProtocol::Multiboot { info: PhysAddr(0) })
    }

    #[test]
    fn highest_priority_wins_whatever_the_link_order() {
        let orders: [[&dyn Hypervisor; 4]; 3] =
            [[&NATIVE, &XEN, &HVM, &LGUEST], [&LGUEST, &HVM, &XEN, &NATIVE], [&HVM, &NATIVE, &LGUEST, &XEN]];
        for reg in orders {
            let c = evaluate(&reg, &boot()).unwrap();
            assert_eq!(select(&c, None).unwrap().name(), "xen");
            let names: [&str; 4] = core::array::from_fn(|i| c.iter().nth(i).unwrap().0.name());
            assert_eq!(names, ["xen", "xen-hvm", "native", "lguest"]);
        }
    }

    #[test]
    fn override_by_name() {
        let reg: [&dyn Hypervisor; 3] = [&NATIVE, &XEN, &LGUEST];
        let c = evaluate(&reg, &boot()).unwrap();
        assert_eq!(select(&c, Some("native")).unwrap().name(), "native");
        assert_eq!(select(&c, Some("vmware")).err(), Some(SelectError::Unknown("vmware")));
        assert_eq!(select(&c, Some("lguest")).err(), Some(SelectError::NotDetected("lguest", "absent")));
    }

    #[test]
    fn empty_and_undetected_registries() {
        assert_eq!(evaluate(&[], &boot()).err(), Some(SelectError::Empty));
        let reg: [&dyn Hypervisor; 1] = [&LGUEST];
        let c = evaluate(&reg, &boot()).unwrap();
        assert_eq!(select(&c, None).err(), Some(SelectError::NoneDetected));
    }
}
