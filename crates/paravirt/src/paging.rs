//! Paging policy: which pagetable format and features a platform allows.
//!
//! Natively that is whatever the CPU offers. A hypervisor may allow less
//! (Xen PV: PAE only, no large or global pages; lguest: 2-level only) and
//! may keep the top of the address space for itself.

use arch_i386::cpu::CpuFeatures;
use arch_i386::PagingMode;

/// Paging features the build may use (CPU and backend agreeing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    pub large_pages: bool,
    pub global_pages: bool,
    pub nx: bool,
}

pub trait PagingPolicy: Sync {
    /// Paging formats this platform can run, most preferred first.
    fn paging_modes(&self, cpu: &CpuFeatures) -> &'static [PagingMode] {
        if cpu.pae {
            &[PagingMode::Pae, PagingMode::TwoLevel]
        } else {
            &[PagingMode::TwoLevel]
        }
    }

    /// May the direct map use large pages?
    fn large_pages(&self, cpu: &CpuFeatures) -> bool {
        cpu.pse
    }

    /// May kernel mappings be global?
    fn global_pages(&self, cpu: &CpuFeatures) -> bool {
        cpu.pge
    }

    /// Bytes at the top of the address space the hypervisor keeps for
    /// itself (Linux's `reserve_top_address`): the fixmap goes below them.
    fn reserved_top(&self) -> u32 {
        0
    }

    /// Must every pagetable page be mapped read-only in the kernel's map?
    /// (Xen PV: yes, it refuses to use a writable page as a pagetable.)
    fn pagetable_pages_readonly(&self) -> bool {
        false
    }

    /// With PAE, may every root share the kernel's pmd page (Linux's
    /// `SHARED_KERNEL_PMD`)? Xen PV: no, its L2 under slot 3 also holds
    /// Xen's own mappings and may belong to one L3 only, so each root gets
    /// its own copy, kept in sync.
    fn shared_kernel_pmd(&self) -> bool {
        true
    }
}
