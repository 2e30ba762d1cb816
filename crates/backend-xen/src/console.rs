//! The PV console.
//!
//! Xen gives the initial domain its own console through a hypercall
//! (`console_io`, which writes to Xen's serial line). Every other domain is
//! refused that (release builds of Xen allow it only to dom0) and gets a
//! ring instead: one page shared with `xenconsoled` in dom0, its machine
//! frame and event channel in start_info (PV) or in HVM parameters (PVH).
//!
//! ```text
//!    0 in[1024]      dom0 -> guest (keyboard; unused here)
//! 1024 out[2048]     guest -> dom0
//! 3072 in_cons, in_prod, out_cons, out_prod     (free-running u32 indices)
//! ```
//!
//! The guest is the producer of `out`: it copies bytes in at
//! `out_prod % 2048`, publishes the new `out_prod` after the bytes (a
//! write barrier), and kicks the event channel. `xenconsoled` advances
//! `out_cons` as it drains. A full ring means waiting for dom0: kick and
//! yield the CPU until there is room.

use core::sync::atomic::{fence, AtomicU32, AtomicUsize, Ordering};

use spin::Mutex;

use crate::abi::{nr, EVTCHNOP_SEND, SCHEDOP_YIELD};
use crate::hypercall::{self, HypercallPage};

const OUT: usize = 1024;
const OUT_SIZE: u32 = 2048;
const OUT_CONS: usize = 3080;
const OUT_PROD: usize = 3084;

/// How long `drain` waits for dom0 to read what is left (yields).
const DRAIN_YIELDS: u32 = 1000;

/// What a domU wrote before its ring could be mapped (a PVH guest's ring
/// is above the direct map): replayed on the ring.
const EARLY_SIZE: usize = 16384;

struct Early {
    buf: [u8; EARLY_SIZE],
    len: usize,
}

/// Where output goes: Xen's console until a ring is known; if Xen refuses
/// that (a domU), a buffer.
pub struct Console {
    /// The ring page's virtual address (0: none).
    page: AtomicUsize,
    port: AtomicU32,
    early: Mutex<Early>,
}

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

impl Console {
    pub const fn new() -> Console {
        Console {
            page: AtomicUsize::new(0),
            port: AtomicU32::new(0),
            early: Mutex::new(Early { buf: [0; EARLY_SIZE], len: 0 }),
        }
    }

    /// From now on write to the ring mapped at `page`, kicking `port`;
    /// what was buffered goes first.
    ///
    /// # Safety
    /// `page` must be the console ring's page, mapped writable for the
    /// rest of the domain's life.
    pub unsafe fn use_ring(&self, page: usize, port: u32) {
        self.port.store(port, Ordering::Relaxed);
        let mut early = self.early.lock();
        // SAFETY: the caller's contract is Ring's.
        self.ring_write(unsafe { Ring::new(page) }, &early.buf[..early.len]);
        early.len = 0;
        self.page.store(page, Ordering::Release);
    }

    pub fn has_ring(&self) -> bool {
        self.page.load(Ordering::Relaxed) != 0
    }

    pub fn write(&self, hc: &HypercallPage, bytes: &[u8]) {
        match self.page.load(Ordering::Acquire) {
            0 => {
                if hc.console_write(bytes).is_err() {
                    let mut early = self.early.lock();
                    let at = early.len;
                    let n = bytes.len().min(EARLY_SIZE - at);
                    early.buf[at..at + n].copy_from_slice(&bytes[..n]);
                    early.len += n;
                }
            }
            // SAFETY: a non-zero page was given to `use_ring`, whose
            // contract is Ring's.
            page => self.ring_write(unsafe { Ring::new(page) }, bytes),
        }
    }

    fn ring_write(&self, ring: Ring, bytes: &[u8]) {
        let mut prod = ring.out_prod();
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = OUT_SIZE - prod.wrapping_sub(ring.out_cons());
            if room == 0 {
                self.kick();
                hypercall::raw(nr::SCHED_OP, [SCHEDOP_YIELD, 0, 0, 0, 0]);
                continue;
            }
            let n = rest.len().min(room as usize);
            for &b in &rest[..n] {
                ring.put(prod, b);
                prod = prod.wrapping_add(1);
            }
            rest = &rest[n..];
            ring.publish(prod);
            self.kick();
        }
    }

    /// Tells dom0 there is output. Not counted with the other hypercalls:
    /// how many there are depends on how much the kernel logs.
    fn kick(&self) {
        let port = self.port.load(Ordering::Relaxed);
        hypercall::raw(nr::EVENT_CHANNEL_OP, [EVTCHNOP_SEND, &raw const port as u32, 0, 0, 0]);
    }

    /// Before the domain goes away: wait (a bounded while) until dom0 has
    /// read everything, so the last lines, the result among them, are not
    /// lost with the domain.
    pub fn drain(&self) {
        let page = self.page.load(Ordering::Acquire);
        if page == 0 {
            return;
        }
        // SAFETY: as in `write`.
        let ring = unsafe { Ring::new(page) };
        for _ in 0..DRAIN_YIELDS {
            if ring.out_cons() == ring.out_prod() {
                return;
            }
            self.kick();
            hypercall::raw(nr::SCHED_OP, [SCHEDOP_YIELD, 0, 0, 0, 0]);
        }
    }
}

/// The ring page. Every access is volatile: dom0 writes `out_cons`
/// concurrently, and reads what we write.
#[derive(Clone, Copy)]
struct Ring(*mut u8);

impl Ring {
    /// # Safety
    /// `page` must be the console ring page, mapped writable for as long
    /// as the value is used.
    unsafe fn new(page: usize) -> Ring {
        Ring(page as *mut u8)
    }

    fn word(self, off: usize) -> *mut u32 {
        self.0.wrapping_add(off) as *mut u32
    }

    fn out_cons(self) -> u32 {
        // SAFETY: an aligned word inside the ring page (Ring's invariant).
        unsafe { self.word(OUT_CONS).read_volatile() }
    }

    fn out_prod(self) -> u32 {
        // SAFETY: as in out_cons.
        unsafe { self.word(OUT_PROD).read_volatile() }
    }

    /// The byte at free-running index `idx` of `out`.
    fn put(self, idx: u32, b: u8) {
        // SAFETY: OUT + idx % OUT_SIZE is inside `out`, inside the page.
        unsafe { self.0.add(OUT + (idx % OUT_SIZE) as usize).write_volatile(b) }
    }

    /// Makes the bytes up to `prod` visible to dom0: the bytes before the
    /// index that publishes them.
    fn publish(self, prod: u32) {
        fence(Ordering::Release);
        // SAFETY: as in out_cons.
        unsafe { self.word(OUT_PROD).write_volatile(prod) }
    }
}
