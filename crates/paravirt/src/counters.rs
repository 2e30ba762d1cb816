//! What a backend counts: the price of talking to the hypervisor.

use core::fmt;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Hypercalls made (a multicall counts once).
    pub hypercalls: u32,
    /// Entries carried by mmu_update calls.
    pub mmu_update_entries: u32,
    /// Entries carried by mmuext_op calls.
    pub mmuext_entries: u32,
    /// Sub-calls carried by multicalls.
    pub multicall_entries: u32,
    /// Calls queued on an asynchronous ring (lguest).
    pub async_entries: u32,
}

impl Counters {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            hypercalls: self.hypercalls - earlier.hypercalls,
            mmu_update_entries: self.mmu_update_entries - earlier.mmu_update_entries,
            mmuext_entries: self.mmuext_entries - earlier.mmuext_entries,
            multicall_entries: self.multicall_entries - earlier.multicall_entries,
            async_entries: self.async_entries - earlier.async_entries,
        }
    }
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "hypercalls={} mmu_update_entries={} mmuext_entries={} multicall_entries={} async_entries={}",
            self.hypercalls,
            self.mmu_update_entries,
            self.mmuext_entries,
            self.multicall_entries,
            self.async_entries
        )
    }
}
