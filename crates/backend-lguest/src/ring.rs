//! The async hypercall ring: batching without a batch hypercall.
//!
//! `lguest_data` holds 64 slots. Instead of trapping for every pagetable
//! update, the guest writes the call's registers into the next slot and
//! flips its status byte from 0xFF (free) to 0 (pending). The host drains
//! the ring, in order, before it handles any synchronous hypercall, and
//! marks each slot 0xFF again. So a burst of updates costs one trap per
//! ring-full: when the next slot is still pending, the guest makes one
//! synchronous FLUSH_ASYNC (which drains everything) and goes on.
//!
//! The logic is written against the [`Slots`] trait so the unit tests can
//! play the host.

use crate::abi::{HcallArgs, RING_SIZE, STATUS_DONE};

/// Where the ring lives.
pub trait Slots {
    fn status(&self, i: usize) -> u8;
    /// Writes the call into slot `i`, then marks it pending.
    fn post(&mut self, i: usize, call: HcallArgs);
}

/// The host did not drain the ring when asked to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotDrained {
    pub slot: usize,
    pub status: u8,
}

/// The guest's side of the ring: the next slot to use.
#[derive(Debug, Default)]
pub struct Ring {
    next: usize,
    /// Calls posted since the host last drained the ring.
    queued: u32,
}

impl Ring {
    pub const fn new() -> Ring {
        Ring { next: 0, queued: 0 }
    }

    /// Posts `call`. If the ring is full, `flush` first makes one
    /// synchronous FLUSH_ASYNC, after which the host must have freed the
    /// slot. Returns whether `flush` ran.
    pub fn push<S: Slots>(
        &mut self,
        slots: &mut S,
        call: HcallArgs,
        flush: impl FnOnce(&mut S),
    ) -> Result<bool, NotDrained> {
        let mut flushed = false;
        if slots.status(self.next) != STATUS_DONE {
            flush(slots);
            self.drained();
            flushed = true;
            let status = slots.status(self.next);
            if status != STATUS_DONE {
                return Err(NotDrained { slot: self.next, status });
            }
        }
        slots.post(self.next, call);
        self.next = (self.next + 1) % RING_SIZE;
        self.queued += 1;
        Ok(flushed)
    }

    /// Are there calls the host has not seen yet?
    pub fn pending(&self) -> bool {
        self.queued > 0
    }

    /// Any synchronous hypercall drains the ring first: call this after one.
    pub fn drained(&mut self) {
        self.queued = 0;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::abi::{LguestData, STATUS_PENDING};
    use std::vec::Vec;

    /// A ring in plain memory and a host that drains it like lguest's
    /// `do_async_hcalls`: from its own cursor, in order, until a free slot.
    struct Sim {
        data: LguestData,
        host_next: usize,
        done: Vec<HcallArgs>,
        flushes: u32,
        host_drains: bool,
    }

    impl Sim {
        fn new() -> Sim {
            Sim { data: LguestData::INIT, host_next: 0, done: Vec::new(), flushes: 0, host_drains: true }
        }
        fn drain(&mut self) {
            for _ in 0..RING_SIZE {
                let n = self.host_next;
                if self.data.hcall_status[n] == STATUS_DONE {
                    break;
                }
                self.done.push(self.data.hcalls[n]);
                self.data.hcall_status[n] = STATUS_DONE;
                self.host_next = (n + 1) % RING_SIZE;
            }
        }
    }

    impl Slots for Sim {
        fn status(&self, i: usize) -> u8 {
            self.data.hcall_status[i]
        }
        fn post(&mut self, i: usize, call: HcallArgs) {
            self.data.hcalls[i] = call;
            self.data.hcall_status[i] = STATUS_PENDING;
        }
    }

    fn flush(s: &mut Sim) {
        s.flushes += 1;
        if s.host_drains {
            s.drain();
        }
    }

    fn call(i: u32) -> HcallArgs {
        HcallArgs::new(14, 0x1000, 0xC000_0000 + i * 4096, i)
    }

    #[test]
    fn sixty_four_calls_fit_without_a_trap() {
        let (mut ring, mut sim) = (Ring::new(), Sim::new());
        for i in 0..64 {
            assert_eq!(ring.push(&mut sim, call(i), flush), Ok(false));
        }
        assert_eq!(sim.flushes, 0);
        assert!(ring.pending());
        // The 65th finds the ring full: one FLUSH_ASYNC.
        assert_eq!(ring.push(&mut sim, call(64), flush), Ok(true));
        assert_eq!(sim.flushes, 1);
        assert_eq!(sim.done.len(), 64);
    }

    #[test]
    fn one_trap_per_ring_full_and_order_kept() {
        let (mut ring, mut sim) = (Ring::new(), Sim::new());
        for i in 0..1000 {
            ring.push(&mut sim, call(i), flush).unwrap();
        }
        // 1000 calls: a flush at the 65th, 129th, ... = 15 flushes.
        assert_eq!(sim.flushes, 15);
        sim.drain();
        ring.drained();
        assert!(!ring.pending());
        assert_eq!(sim.done.len(), 1000);
        for (i, c) in sim.done.iter().enumerate() {
            assert_eq!(*c, call(i as u32));
        }
    }

    #[test]
    fn host_draining_between_calls_means_no_trap() {
        // A synchronous hypercall in between (say, console output) drains
        // the ring; the guest's cursor just goes on.
        let (mut ring, mut sim) = (Ring::new(), Sim::new());
        for i in 0..200 {
            ring.push(&mut sim, call(i), flush).unwrap();
            if i % 10 == 9 {
                sim.drain();
                ring.drained();
            }
        }
        assert_eq!(sim.flushes, 0);
        assert_eq!(sim.done.len(), 200);
    }

    #[test]
    fn a_host_that_does_not_drain_is_an_error() {
        let (mut ring, mut sim) = (Ring::new(), Sim::new());
        sim.host_drains = false;
        for i in 0..64 {
            ring.push(&mut sim, call(i), flush).unwrap();
        }
        assert_eq!(ring.push(&mut sim, call(64), flush), Err(NotDrained { slot: 0, status: STATUS_PENDING }));
    }
}
