//! A PV guest's interrupts: event channels through the event callback,
//! and a virtual interrupt flag in memory.
//!
//! - The flag is vCPU 0's `evtchn_upcall_mask` in shared_info: disabling
//!   is one byte store, enabling is a store plus a look at
//!   `evtchn_upcall_pending` (an event that came while masked is not
//!   re-announced: a cheap hypercall, `xen_version`, makes Xen deliver it
//!   on the way back). No hypercall in the common case, as in Linux.
//! - Events arrive at the callback registered with `CALLBACKOP_register`
//!   (the kernel's `irq_upcall` stub), with events masked; the kernel's
//!   entry code calls `dispatch(UPCALL)`, which scans the ports.
//! - Returning is Xen's `iret` hypercall (the hypercall page's slot 23,
//!   jumped to with an ordinary iret frame, through `xen_iret_counted` in
//!   hypercall.rs so that every return, from an event, an exception or a
//!   system call, shows in the counters): it restores the mask from the
//!   frame's IF and returns in one step, so an event arriving in between
//!   is delivered at once rather than missed. Linux avoided the hypercall
//!   for returns to the kernel with a critical-region fixup in the
//!   callback (`xen_iret`); this kernel pays one hypercall per event for
//!   code with no such region.
//! - Halting is `SCHEDOP_block`, called with events masked: Xen unmasks
//!   and sleeps atomically and returns at the next event.

use core::sync::atomic::Ordering;

use paravirt::irq::{Entries, UPCALL};
use paravirt::{HvError, HvResult, Irq, IrqFlags, Line, Services};

use crate::abi::{self, nr, CallbackRegister, SCHEDOP_BLOCK, VCPUOP_DOWN};
use crate::shared_info::{self, Page};
use crate::XenPv;

impl XenPv {
    fn page(&self) -> Option<Page> {
        self.shared.page()
    }

    /// Maps Xen's shared info page over a page of the image.
    fn map_shared_info(&self) -> HvResult<Page> {
        let ma = self.shared_info_ma.load(Ordering::Relaxed);
        let va = shared_info::FRAME.addr();
        let mut pte = ma as u64 | 0x63; // present, writable, accessed, dirty
        if self.mmu.nx() {
            pte |= 1 << 63;
        }
        let rc = self
            .hc()
            .call(nr::UPDATE_VA_MAPPING, [va as u32, pte as u32, (pte >> 32) as u32, abi::UVMF_INVLPG, 0]);
        if rc < 0 {
            return Err(HvError::refused("update_va_mapping(shared_info)", &[va as u64, pte], rc as i64));
        }
        // SAFETY: `va` now maps the shared info page, and nothing maps the
        // image page under it again.
        unsafe { self.shared.set(va) };
        self.page().ok_or(HvError::local("xen: shared_info mapping lost", &[]))
    }

    fn register_callback(&self, kind: u16, flags: u16, eip: u32, what: &'static str) -> HvResult {
        let cb = CallbackRegister { kind, flags, cs: abi::FLAT_RING1_CS as u32, eip };
        let rc = self.hc().call(nr::CALLBACK_OP, [abi::CALLBACKOP_REGISTER, &raw const cb as u32, 0, 0, 0]);
        if rc < 0 {
            return Err(HvError::refused(what, &[eip as u64], rc as i64));
        }
        Ok(())
    }

    /// Makes Xen look at pending events: any hypercall's return does.
    fn force_callback(&self) {
        self.hc().call(nr::XEN_VERSION, [0, 0, 0, 0, 0]);
    }
}

impl Irq for XenPv {
    fn save_fl(&self) -> IrqFlags {
        IrqFlags::from_enabled(self.page().is_some_and(|p| !p.upcall_mask()))
    }

    fn irq_disable(&self) {
        if let Some(p) = self.page() {
            p.set_upcall_mask(true);
        }
    }

    fn irq_enable(&self) {
        // Before shared_info is mapped Xen has every event masked for us
        // and nothing is bound: there is nothing to enable.
        if let Some(p) = self.page() {
            p.set_upcall_mask(false);
            if p.upcall_pending() {
                self.force_callback();
            }
        }
    }

    fn safe_halt(&self) {
        self.hc().call(nr::SCHED_OP, [SCHEDOP_BLOCK, 0, 0, 0, 0]);
    }

    fn halt(&self) {
        // As Linux's xen_halt: with events masked nothing could wake us,
        // so take the vCPU down; otherwise block.
        if self.save_fl().enabled() {
            self.safe_halt();
        } else {
            self.hc().call(nr::VCPU_OP, [VCPUOP_DOWN, 0, 0, 0, 0]);
        }
    }

    fn init(&self, entries: &Entries, _services: &dyn Services) -> HvResult<&'static str> {
        let page = self.map_shared_info()?;
        page.set_upcall_mask(true);
        page.mask_all();
        self.register_callback(abi::CALLBACKTYPE_EVENT, 0, entries.upcall, "callback_op(register, event)")?;
        self.register_callback(
            abi::CALLBACKTYPE_FAILSAFE,
            abi::CALLBACKF_MASK_EVENTS,
            entries.failsafe,
            "callback_op(register, failsafe)",
        )?;
        Ok("Xen event channels (2-level), delivered to the event callback")
    }

    fn dispatch(&self, vector: u32, handle: &mut dyn FnMut(Line)) {
        match self.page() {
            Some(page) if vector == UPCALL => self.events.scan(page, handle),
            _ => handle(Line::Other(vector)),
        }
    }
}
