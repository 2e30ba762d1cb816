//! The `Hypervisor` trait: paravirt_ops as Rust traits with native
//! defaults, grouped the way Linux groups `pv_ops`.
//!
//! ```text
//!  Hypervisor            platform: name, detect, init, console, power, counters
//!   ├─ paging()  -> &dyn PagingPolicy   which formats and features to use
//!   ├─ mmu()     -> &dyn Mmu            entries, pagetable pages, TLB, CR3, lazy mode,
//!   │                                   and the seed's pagetable_setup_start/done
//!   ├─ cpu()     -> &dyn Cpu            descriptor tables, fault address, iret
//!   ├─ irq()     -> &dyn Irq            the interrupt flag, halt, the controller
//!   └─ time()    -> &dyn Time           clock source, wall clock, clock events
//! ```
//!
//! Every method has a default that *is* the native behaviour (or nothing),
//! and every group accessor defaults to the native group. A backend
//! implements `name` and `detect`, then returns its own group only where
//! its platform differs, and inside that group overrides only the methods
//! that differ: its impls read as the list of differences. The kernel asks
//! for the groups once, when the backend is chosen, and hands each part of
//! the kernel only the group it needs (`mm` sees an `&dyn Mmu`).

use crate::{native, BootInfo, Counters, Cpu, ExitStatus, HvResult, Irq, Mmu, PagingPolicy, Services, Time};

/// A backend's answer to "is this your platform?".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detected {
    /// Higher wins. Boot-protocol evidence (Xen's start_info, lguest's
    /// boot_params) is certain: 100. CPUID evidence: 50. Native: 0.
    pub priority: u8,
    /// Why, for the boot log.
    pub why: &'static str,
}

/// `Ok` if detected, `Err(why not)` otherwise.
pub type Verdict = Result<Detected, &'static str>;

pub trait Hypervisor: Sync {
    // ---- Platform ---------------------------------------------------------

    /// The backend's name, as `hypervisor=NAME` spells it.
    fn name(&self) -> &'static str;

    /// Is this the platform we booted on? Must not touch the machine beyond
    /// reading `boot`: it runs for every backend before any is chosen.
    fn detect(&self, boot: &BootInfo) -> Verdict;

    /// Called once, right after this backend is chosen and before any other
    /// method but `console_write`: hypercall set-up, registering shared
    /// structures, filling in what the boot protocol did not say (e.g. the
    /// memory map).
    fn init(&self, _boot: &mut BootInfo) -> HvResult {
        Ok(())
    }

    /// Called once the kernel runs on its own pagetable, before interrupts
    /// and time are set up: what needs a mapping the boot did not have (a
    /// PVH guest's console ring above the direct map).
    fn late_init(&self, _services: &dyn Services) -> HvResult {
        Ok(())
    }

    /// Called when this backend becomes the console, before `init` and
    /// before the early log is replayed on it: a console that needs the
    /// boot information (Xen's ring is named in start_info) finds it here.
    /// Cannot fail: a console that cannot start stays on its fallback.
    fn console_init(&self, _boot: &BootInfo) {}

    fn console_write(&self, bytes: &[u8]) {
        native::console_write(bytes)
    }

    /// Ends the run with `status`; never returns.
    fn shutdown(&self, status: ExitStatus) -> ! {
        native::shutdown(status)
    }

    /// Hypercalls made so far and what they carried (native: none).
    fn counters(&self) -> Counters {
        Counters::default()
    }

    // ---- The groups -------------------------------------------------------

    fn paging(&self) -> &dyn PagingPolicy {
        &native::NativePaging
    }

    fn mmu(&self) -> &dyn Mmu {
        &native::NativeMmu
    }

    fn cpu(&self) -> &dyn Cpu {
        &native::NativeCpu
    }

    fn irq(&self) -> &dyn Irq {
        &native::NativeIrq
    }

    fn time(&self) -> &dyn Time {
        &native::NativeTime
    }
}
