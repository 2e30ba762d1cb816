//! Event channels (2-level ABI): Xen's interrupts.
//!
//! A port is a bit in shared_info's `evtchn_pending`, with a mask bit
//! next to it. Xen raising an event sets the pending bit and, if the port
//! is unmasked, the port's word in `evtchn_pending_sel` and then
//! `evtchn_upcall_pending`; if the vCPU's `evtchn_upcall_mask` is clear
//! it enters the guest's event callback (PV) or injects the callback
//! vector (PVH). The guest finds the ports by the two-level scan in
//! [`EventChannels::scan`], clearing each pending bit before handling it.
//!
//! Every port starts masked here, and only ports with a handler are
//! unmasked: a domU also has its console and xenstore ports bound by the
//! toolstack, which the other end kicks whenever it likes.

use core::sync::atomic::{AtomicU32, Ordering};

use paravirt::{HvError, HvResult, Line};

use crate::abi::{nr, EVTCHNOP_BIND_VIRQ, VIRQ_TIMER};
use crate::hypercall::HypercallPage;
use crate::shared_info::{Page, NR_PORTS};

/// `struct evtchn_bind_virq`: virq and vcpu in, port out.
#[repr(C)]
struct BindVirq {
    virq: u32,
    vcpu: u32,
    port: u32,
}

#[derive(Default)]
pub struct EventChannels {
    /// The port VIRQ_TIMER is bound to (0: none; port 0 is never used).
    timer_port: AtomicU32,
}

impl EventChannels {
    pub const fn new() -> EventChannels {
        EventChannels { timer_port: AtomicU32::new(0) }
    }

    pub fn timer_port(&self) -> u32 {
        self.timer_port.load(Ordering::Relaxed)
    }

    /// Binds vCPU 0's timer VIRQ to a new port; the port stays masked
    /// until [`unmask`].
    pub fn bind_timer(&self, hc: &HypercallPage, page: Page) -> HvResult<u32> {
        let mut b = BindVirq { virq: VIRQ_TIMER, vcpu: 0, port: 0 };
        let rc = hc.call(nr::EVENT_CHANNEL_OP, [EVTCHNOP_BIND_VIRQ, &raw mut b as u32, 0, 0, 0]);
        if rc < 0 {
            return Err(HvError::refused(
                "event_channel_op(EVTCHNOP_bind_virq, VIRQ_TIMER)",
                &[0],
                rc as i64,
            ));
        }
        if b.port == 0 || b.port >= NR_PORTS {
            return Err(HvError::local("xen: VIRQ_TIMER bound to an impossible port", &[b.port as u64]));
        }
        page.set_mask(b.port, true);
        self.timer_port.store(b.port, Ordering::Relaxed);
        Ok(b.port)
    }

    /// Unmasks `port` locally (Mini-OS's `unmask_evtchn`): an event that
    /// arrived while it was masked set only the pending bit, so announce
    /// it the way Xen would have; the caller's next interrupt enable
    /// delivers it.
    pub fn unmask(&self, page: Page, port: u32) {
        page.set_mask(port, false);
        if page.is_pending(port) && !page.mark_pending_sel(port / 32) {
            page.set_upcall_pending();
        }
    }

    /// The upcall's work, with events masked: clear `upcall_pending`
    /// first (a new event sets it again), take the selector words, and
    /// handle every pending unmasked port, lowest first, clearing its
    /// pending bit before calling `handle`. Again while Xen raised more.
    pub fn scan(&self, page: Page, handle: &mut dyn FnMut(Line)) {
        let timer = self.timer_port();
        loop {
            page.clear_upcall_pending();
            let mut sel = page.take_pending_sel();
            while sel != 0 {
                let i = sel.trailing_zeros();
                sel &= sel - 1;
                loop {
                    let w = page.deliverable(i);
                    if w == 0 {
                        break;
                    }
                    let port = i * 32 + w.trailing_zeros();
                    page.clear_pending(port);
                    handle(if port == timer { Line::Timer } else { Line::Other(port) });
                }
            }
            if !page.upcall_pending() {
                return;
            }
        }
    }
}
