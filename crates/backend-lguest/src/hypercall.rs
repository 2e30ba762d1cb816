//! Making hypercalls: synchronous ones (`int $0x1f`) and queued ones (the
//! async ring, in lazy-MMU mode), and counting both.
//!
//! LGUEST_INIT must be the host's first hypercall: it tells the host where
//! `lguest_data` is, and the host drains that page's ring before every
//! other call. The kernel may print (which is a NOTIFY hypercall) before it
//! calls the backend's `init`, so every path in goes through [`ensure_init`].

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use arch_i386::layout::PAGE_OFFSET;
use paravirt::{Counters, HvError, HvResult};
use spin::Mutex;

use crate::abi::{nr, HcallArgs};
use crate::ring::Ring;
use crate::shared::{field, SharedSlots, LGUEST_DATA};

/// Traps into the host. Only ebx has to be passed around LLVM, which may
/// use it itself.
#[cfg(target_arch = "x86")]
fn trap(call: u32, arg1: u32, arg2: u32, arg3: u32) -> u32 {
    let ret: u32;
    // SAFETY: `int $0x1f` enters the host, which reads the registers and
    // may write guest memory (lguest_data, nothing else we own); it
    // returns with every register but eax preserved.
    unsafe {
        core::arch::asm!(
            "xchg {b}, ebx",
            "int 0x1f",
            "xchg {b}, ebx",
            b = inout(reg) arg2 => _,
            inout("eax") call => ret,
            in("edx") arg1,
            in("ecx") arg3,
        );
    }
    ret
}

#[cfg(not(target_arch = "x86"))]
fn trap(call: u32, _: u32, _: u32, _: u32) -> u32 {
    panic!("lguest hypercall {call} on the host")
}

static HYPERCALLS: AtomicU32 = AtomicU32::new(0);
static ASYNC_ENTRIES: AtomicU32 = AtomicU32::new(0);
static INITIALISED: AtomicBool = AtomicBool::new(false);

struct Batch {
    ring: Ring,
    lazy: bool,
}

static BATCH: Mutex<Batch> = Mutex::new(Batch { ring: Ring::new(), lazy: false });

/// Registers `lguest_data` with the host, once: the first hypercall.
pub fn ensure_init() {
    if INITIALISED.swap(true, Ordering::SeqCst) {
        return;
    }
    // What the host reads at LGUEST_INIT: the kernel/user split (used for
    // user-only flushes); interrupts stay off, so no noirq range.
    LGUEST_DATA.write(field!(kernel_address), PAGE_OFFSET);
    LGUEST_DATA.write(field!(noirq_start), 0);
    LGUEST_DATA.write(field!(noirq_end), 0);
    LGUEST_DATA.write(field!(irq_enabled), 0);
    HYPERCALLS.fetch_add(1, Ordering::Relaxed);
    trap(nr::LGUEST_INIT, LGUEST_DATA.pa(), 0, 0);
}

/// A synchronous hypercall, counted. The host drains the ring first.
pub fn call(call: u32, arg1: u32, arg2: u32, arg3: u32) -> u32 {
    HYPERCALLS.fetch_add(1, Ordering::Relaxed);
    call_uncounted(call, arg1, arg2, arg3)
}

/// A synchronous hypercall left out of the counters: console output,
/// which would make the counts depend on how much the kernel logs.
pub fn call_uncounted(call: u32, arg1: u32, arg2: u32, arg3: u32) -> u32 {
    ensure_init();
    // The host drains the ring before this call. (If the ring is locked,
    // this is a fault report from inside `queue`: leave the bookkeeping,
    // which only costs a spare FLUSH_ASYNC later.)
    if let Some(mut b) = BATCH.try_lock() {
        b.ring.drained();
    }
    trap(call, arg1, arg2, arg3)
}

/// A call that may wait on the ring: queued in lazy-MMU mode, made at once
/// otherwise.
pub fn queue(call: u32, arg1: u32, arg2: u32, arg3: u32) -> HvResult {
    ensure_init();
    let mut b = BATCH.lock();
    if !b.lazy {
        drop(b);
        self::call(call, arg1, arg2, arg3);
        return Ok(());
    }
    let args = HcallArgs::new(call, arg1, arg2, arg3);
    let pushed = b.ring.push(&mut SharedSlots, args, |_| {
        HYPERCALLS.fetch_add(1, Ordering::Relaxed);
        trap(nr::FLUSH_ASYNC, 0, 0, 0);
    });
    match pushed {
        Ok(_) => {
            ASYNC_ENTRIES.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(HvError::new(
            "lguest: the host did not drain the async ring (slot, status)",
            &[e.slot as u64, e.status as u64],
            -16,
        )),
    }
}

pub fn enter_lazy() {
    BATCH.lock().lazy = true;
}

/// Leaves lazy mode; one FLUSH_ASYNC if anything is still queued, so the
/// host's shadows are current when this returns.
pub fn leave_lazy() {
    let pending = {
        let mut b = BATCH.lock();
        b.lazy = false;
        b.ring.pending()
    };
    if pending {
        call(nr::FLUSH_ASYNC, 0, 0, 0);
    }
}

pub fn counters() -> Counters {
    Counters {
        hypercalls: HYPERCALLS.load(Ordering::Relaxed),
        async_entries: ASYNC_ENTRIES.load(Ordering::Relaxed),
        ..Counters::default()
    }
}
