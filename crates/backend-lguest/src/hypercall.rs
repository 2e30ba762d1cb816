//! Making hypercalls: synchronous ones (`int $0x1f`) and queued ones (the
//! async ring, in lazy-MMU mode), counting both, and (for the negative
//! test) deliberately not telling the host about one pagetable update.
//!
//! LGUEST_INIT must be the host's first hypercall: it tells the host where
//! `lguest_data` is, and the host drains that page's ring before every
//! other call. The kernel may print (which is a NOTIFY hypercall) before it
//! calls the backend's `init`, so every path in goes through
//! [`Hypercalls::ensure_init`].

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use arch_i386::layout::PAGE_OFFSET;
use paravirt::{Counters, HvError, HvResult};
use spin::Mutex;

use crate::abi::{nr, off, HcallArgs, SYSCALL_VECTOR};
use crate::ring::Ring;
use crate::shared::Data;
use crate::transport::Host;

struct Batch {
    ring: Ring,
    lazy: bool,
}

pub struct Hypercalls<H> {
    pub host: H,
    initialised: AtomicBool,
    batch: Mutex<Batch>,
    hypercalls: AtomicU32,
    async_entries: AtomicU32,
    /// Pagetable updates announced (or skipped) so far, and the first not
    /// to announce (`lguest_skip_notify=N`, 0: none).
    updates: AtomicU32,
    skip: AtomicU32,
}

impl<H: Host> Hypercalls<H> {
    pub const fn new(host: H) -> Hypercalls<H> {
        Hypercalls {
            host,
            initialised: AtomicBool::new(false),
            batch: Mutex::new(Batch { ring: Ring::new(), lazy: false }),
            hypercalls: AtomicU32::new(0),
            async_entries: AtomicU32::new(0),
            updates: AtomicU32::new(0),
            skip: AtomicU32::new(0),
        }
    }

    /// The shared page.
    pub fn data(&self) -> Data {
        // SAFETY: the host transport's page lives as long as the transport.
        unsafe { Data::new(self.host.data()) }
    }

    /// Registers `lguest_data` with the host, once: the first hypercall.
    pub fn ensure_init(&self) {
        if self.initialised.swap(true, Ordering::SeqCst) {
            return;
        }
        // What the host reads at LGUEST_INIT: the kernel/user split (used
        // for user-only flushes), the system-call vector 2.6.24 insists
        // on, and the instructions of our `iret` it must never interrupt
        // (it reads them only now). Interrupts start disabled and every
        // irq blocked until the controller and the clock are set up
        // (2.6.24's static lguest_data blocks the timer's).
        let d = self.data();
        let (noirq_start, noirq_end) = crate::iret::noirq_window();
        d.write(off::KERNEL_ADDRESS, PAGE_OFFSET);
        d.write(off::SYSCALL_VEC, SYSCALL_VECTOR);
        d.write(off::NOIRQ_START, noirq_start);
        d.write(off::NOIRQ_END, noirq_end);
        d.write(off::IRQ_ENABLED, 0);
        d.write(off::BLOCKED_INTERRUPTS, u32::MAX);
        self.hypercalls.fetch_add(1, Ordering::Relaxed);
        self.host.trap(nr::LGUEST_INIT, self.host.data_pa(), 0, 0);
    }

    /// A synchronous hypercall, counted. The host drains the ring first.
    pub fn call(&self, call: u32, arg1: u32, arg2: u32, arg3: u32) -> u32 {
        self.hypercalls.fetch_add(1, Ordering::Relaxed);
        self.call_uncounted(call, arg1, arg2, arg3)
    }

    /// A synchronous hypercall left out of the counters: console output,
    /// which would make the counts depend on how much the kernel logs.
    pub fn call_uncounted(&self, call: u32, arg1: u32, arg2: u32, arg3: u32) -> u32 {
        self.ensure_init();
        // The host drains the ring before this call. (If the ring is
        // locked, this is a fault report from inside `queue`: leave the
        // bookkeeping, which only costs a spare FLUSH_ASYNC later.)
        if let Some(mut b) = self.batch.try_lock() {
            b.ring.drained();
        }
        self.host.trap(call, arg1, arg2, arg3)
    }

    /// A call that may wait on the ring: queued in lazy-MMU mode, made at
    /// once otherwise.
    pub fn queue(&self, call: u32, arg1: u32, arg2: u32, arg3: u32) -> HvResult {
        self.ensure_init();
        let mut b = self.batch.lock();
        if !b.lazy {
            drop(b);
            self.call(call, arg1, arg2, arg3);
            return Ok(());
        }
        let pushed = b.ring.push(&mut self.data().slots(), HcallArgs::new(call, arg1, arg2, arg3), |_| {
            self.hypercalls.fetch_add(1, Ordering::Relaxed);
            self.host.trap(nr::FLUSH_ASYNC, 0, 0, 0);
        });
        match pushed {
            Ok(_) => {
                self.async_entries.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => Err(HvError::local(
                "lguest: the host did not drain the async ring (slot, status)",
                &[e.slot as u64, e.status as u64],
            )),
        }
    }

    pub fn enter_lazy(&self) {
        self.batch.lock().lazy = true;
    }

    /// Runs `f` with its calls queued, as one batch: in lazy mode already,
    /// they join the caller's batch; otherwise lazy mode is left (and the
    /// ring flushed) when `f` returns.
    pub fn batched<R>(&self, f: impl FnOnce() -> R) -> R {
        let outer = core::mem::replace(&mut self.batch.lock().lazy, true);
        let r = f();
        if !outer {
            self.leave_lazy();
        }
        r
    }

    /// Stays in lazy mode but sends what is queued (one FLUSH_ASYNC if
    /// anything is): Linux's `arch_flush_lazy_mmu_mode`, for a kernel
    /// mapping queued in a batch that the kernel is about to use.
    pub fn flush_lazy(&self) {
        let pending = self.batch.lock().ring.pending();
        if pending {
            self.call(nr::FLUSH_ASYNC, 0, 0, 0);
        }
    }

    /// Leaves lazy mode; one FLUSH_ASYNC if anything is still queued, so
    /// the host's shadows are current when this returns.
    pub fn leave_lazy(&self) {
        let pending = {
            let mut b = self.batch.lock();
            b.lazy = false;
            b.ring.pending()
        };
        if pending {
            self.call(nr::FLUSH_ASYNC, 0, 0, 0);
        }
    }

    /// `lguest_skip_notify=N`: from the Nth pagetable update on (counted
    /// from 1 over SET_PTE and SET_PMD announcements), entries are written
    /// in guest memory but not told to the host, so its audit must find
    /// stale shadows. (From N on, not just the Nth: whether one untold
    /// update leaves a stale shadow depends on whether the host had
    /// shadowed that page yet, which depends on the code's layout; the
    /// first update of `mark_rodata_ro` on, some page the kernel keeps
    /// executing is always among them.)
    pub fn skip_updates_from(&self, n: u32) {
        self.skip.store(n, Ordering::Relaxed);
    }

    /// Announces one entry update (SET_PTE or SET_PMD and its arguments).
    pub fn announce(&self, call: u32, arg1: u32, arg2: u32, arg3: u32) -> HvResult {
        let n = self.updates.fetch_add(1, Ordering::Relaxed) + 1;
        let skip = self.skip.load(Ordering::Relaxed);
        if skip != 0 && n >= skip {
            if n == skip {
                log::warn!(
                    "lguest: lguest_skip_notify={}: update {} ({}({:#x}, {:#x}, {:#x})) and every later one written but not told to the host",
                    skip,
                    n,
                    nr::name(call),
                    arg1,
                    arg2,
                    arg3
                );
            }
            return Ok(());
        }
        self.queue(call, arg1, arg2, arg3)
    }

    pub fn counters(&self) -> Counters {
        Counters {
            hypercalls: self.hypercalls.load(Ordering::Relaxed),
            async_entries: self.async_entries.load(Ordering::Relaxed),
            ..Counters::default()
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::fake::FakeHost;
    use std::vec::Vec;

    /// The calls the guest trapped with (not LGUEST_INIT).
    fn traps(hc: &Hypercalls<FakeHost>) -> Vec<u32> {
        hc.host.done().iter().filter(|c| !c.4 && c.0 != nr::LGUEST_INIT).map(|c| c.0).collect()
    }

    #[test]
    fn a_batch_alone_is_flushed_as_it_ends_and_one_inside_a_batch_joins_it() {
        let hc = Hypercalls::new(FakeHost::new());
        hc.batched(|| {
            hc.queue(nr::SET_PMD, 0x1000, 1, 0).unwrap();
            hc.queue(nr::SET_PMD, 0x1000, 2, 0).unwrap();
        });
        assert_eq!(traps(&hc), [nr::FLUSH_ASYNC]);
        hc.enter_lazy();
        hc.batched(|| hc.queue(nr::SET_PMD, 0x1000, 3, 0).unwrap());
        assert_eq!(traps(&hc).len(), 1, "the caller's batch is still open: nothing sent");
        hc.leave_lazy();
        assert_eq!(traps(&hc), [nr::FLUSH_ASYNC, nr::FLUSH_ASYNC]);
        let queued: Vec<u32> = hc.host.done().iter().filter(|c| c.4).map(|c| c.2).collect();
        assert_eq!(queued, [1, 2, 3]);
    }
}
