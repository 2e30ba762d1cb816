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

#[cfg(test)]
mod tests {
    extern crate std;

    use std::boxed::Box;
    use std::vec::Vec;

    use super::*;

    #[repr(C, align(4096))]
    struct Frame([u8; 4096]);

    /// A zeroed shared info page and the page view of it. The frame is
    /// leaked: `Page` wants it for good.
    fn page() -> Page {
        let f = Box::leak(Box::new(Frame([0; 4096])));
        // SAFETY: the frame is leaked, so it lives for the rest of the test
        // binary; nothing else refers to it.
        unsafe { Page::new((f as *mut Frame).cast()) }
    }

    /// What Xen does when it raises `port` (2-level): pending bit, and for
    /// an unmasked port the selector bit and upcall_pending.
    fn raise(p: Page, port: u32, masked: bool) {
        p.set_pending_for_test(port);
        if !masked {
            p.mark_pending_sel(port / 32);
            p.set_upcall_pending();
        }
    }

    #[test]
    fn scans_pending_unmasked_ports_lowest_first_and_clears_them() {
        let p = page();
        let ev = EventChannels::new();
        ev.timer_port.store(33, Ordering::Relaxed);
        p.set_mask(40, true);
        for port in [700, 33, 5] {
            raise(p, port, false);
        }
        raise(p, 40, true);
        let mut seen = Vec::new();
        ev.scan(p, &mut |l| seen.push(l));
        assert_eq!(seen, [Line::Other(5), Line::Timer, Line::Other(700)]);
        assert!(!p.upcall_pending());
        assert!(!p.is_pending(33) && p.is_pending(40));
        // Unmasking 40 announces it the way Xen would have.
        ev.unmask(p, 40);
        assert!(p.upcall_pending());
        let mut seen = Vec::new();
        ev.scan(p, &mut |l| seen.push(l));
        assert_eq!(seen, [Line::Other(40)]);
    }

    #[test]
    fn a_masked_port_is_not_delivered() {
        let p = page();
        let ev = EventChannels::new();
        p.mask_all();
        // Xen would not even set the selector; a stale one must not matter.
        raise(p, 3, false);
        let mut seen = Vec::new();
        ev.scan(p, &mut |l| seen.push(l));
        assert!(seen.is_empty());
        assert!(p.is_pending(3));
    }
}
