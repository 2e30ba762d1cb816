//! Interrupts under lguest, as 2.6.24 has them (arch/x86/lguest/boot.c,
//! drivers/lguest/interrupts_and_traps.c): the interrupt flag is a word in
//! `lguest_data`, and the controller is the host.
//!
//! **The flag.** `irq_enabled` holds 512 (eflags.IF) or 0. Disabling,
//! enabling, saving and restoring are one store or load each, no
//! hypercall (2.6.24 patched each call site with a single `movl`). The
//! host reads the word before it injects an interrupt, and it injects only
//! when the guest comes back to it: a hypercall, a fault, or the host's
//! own timer interrupting the guest. So an interrupt that arrives while
//! the flag is 0 is *not* noticed when the guest sets it to 512 again; it
//! comes at the next exit (2.6.24: "we'll just get the interrupt on the
//! next timer tick"; later kernels added `irq_pending` and
//! LHCALL_SEND_INTERRUPTS for this, which 2.6.24's ABI does not have).
//! The project's host does better without changing this side: while an
//! interrupt waits it watches `irq_enabled` with a debug register, so the
//! enabling store itself traps and the interrupt comes right after it
//! (tests/lguest-host, `interrupts.rs`).
//!
//! The host changes the word too: it clears it when it delivers through an
//! interrupt gate (every gate of this kernel is one), and sets it to 512
//! when it wakes a halted guest. The return path restores it from the
//! frame (`iret.rs`).
//!
//! **Halting.** `safe_halt` is LHCALL_HALT and nothing else, as in
//! 2.6.24: the kernel calls it with interrupts disabled (it checked, with
//! them off, that it has nothing to do), and the host's rule makes that
//! atomic: it wakes a halted guest for any pending irq the guest has not
//! blocked, *whatever* `irq_enabled` says, sets `irq_enabled` to 512 and
//! delivers the irq with IF set in the frame. The handler returns through
//! `iret`, which keeps the flag at 512: `safe_halt` returns after the
//! interrupt, with interrupts enabled. An interrupt that arrived before
//! the hypercall is still pending in the host, so the halt ends at once:
//! no wake-up is lost.
//!
//! `halt` (2.6.24 kept the native `hlt`, which faults in ring 1; nothing
//! there called it) waits with interrupts as they are. With them enabled
//! that is the same HALT. With them disabled it must be for good, and the
//! host would wake us with them enabled: so every irq is blocked first (a
//! pending irq that is blocked does not wake a halted guest), and HALT is
//! repeated should the host return anyway.
//!
//! **The controller.** 32 irqs, irq n at vector 32 + n (the host reads the
//! gate the guest loaded for that vector), irq 0 the clock. Blocking one is
//! a bit in `blocked_interrupts`; the host delivers the lowest pending irq
//! that is not blocked, one per entry, and clears its pending bit as it
//! delivers: there is nothing to acknowledge. `init` blocks them all; the
//! clock's is unblocked by [`paravirt::Time::init`].

use core::sync::atomic::{compiler_fence, Ordering};

use paravirt::irq::Entries;
use paravirt::{HvResult, Irq, IrqFlags, Line, Services};

use crate::abi::{nr, off, FIRST_EXTERNAL_VECTOR, IRQ_ENABLED, LGUEST_IRQS, TIMER_IRQ};
use crate::transport::Host;
use crate::Lguest;

/// The line behind a vector the host injected.
pub fn line(vector: u32) -> Line {
    match vector.checked_sub(FIRST_EXTERNAL_VECTOR) {
        Some(TIMER_IRQ) => Line::Timer,
        Some(irq) if irq < LGUEST_IRQS => Line::Other(irq),
        // Not an lguest irq (the host injects nothing else): by vector.
        _ => Line::Other(vector),
    }
}

impl<H: Host> Lguest<H> {
    /// Stores the interrupt flag. The host reads it only at instruction
    /// boundaries of this CPU, so ordering against the compiler is all it
    /// takes: the fences keep the critical section's memory accesses
    /// between the disabling store and the enabling one (a volatile store
    /// alone orders only other volatile accesses).
    fn set_irq_enabled(&self, v: u32) {
        compiler_fence(Ordering::SeqCst);
        self.hc.data().write(off::IRQ_ENABLED, v);
        compiler_fence(Ordering::SeqCst);
    }

    /// Sets or clears irq `irq`'s bit in `blocked_interrupts`.
    pub(crate) fn block(&self, irq: u32, blocked: bool) {
        let d = self.hc.data();
        let mask = d.read(off::BLOCKED_INTERRUPTS);
        let bit = 1 << irq;
        d.write(off::BLOCKED_INTERRUPTS, if blocked { mask | bit } else { mask & !bit });
    }
}

impl<H: Host> Irq for Lguest<H> {
    fn save_fl(&self) -> IrqFlags {
        let f = IrqFlags::from_enabled(self.hc.data().read(off::IRQ_ENABLED) & IRQ_ENABLED != 0);
        compiler_fence(Ordering::SeqCst);
        f
    }

    fn restore_fl(&self, f: IrqFlags) {
        self.set_irq_enabled(if f.enabled() { IRQ_ENABLED } else { 0 })
    }

    fn irq_disable(&self) {
        self.set_irq_enabled(0)
    }

    fn irq_enable(&self) {
        self.set_irq_enabled(IRQ_ENABLED)
    }

    fn safe_halt(&self) {
        self.hc.call(nr::HALT, 0, 0, 0);
    }

    fn halt(&self) {
        if self.save_fl().enabled() {
            self.hc.call(nr::HALT, 0, 0, 0);
            return;
        }
        self.hc.data().write(off::BLOCKED_INTERRUPTS, u32::MAX);
        loop {
            self.hc.call(nr::HALT, 0, 0, 0);
        }
    }

    fn init(&self, _entries: &Entries, _services: &dyn Services) -> HvResult<&'static str> {
        self.hc.data().write(off::BLOCKED_INTERRUPTS, u32::MAX);
        Ok("lguest host: 32 irqs at vectors 32-63 (blocked_interrupts), no acknowledgement")
    }

    fn dispatch(&self, vector: u32, handle: &mut dyn FnMut(Line)) {
        handle(line(vector))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;
    use crate::fake::FakeHost;
    use arch_i386::Pfn;

    #[test]
    fn the_flag_is_a_word_in_lguest_data_and_costs_no_hypercall() {
        let lg = Lguest::<FakeHost>::faked(Pfn(1));
        let word = || lg.hc.data().read(off::IRQ_ENABLED);
        lg.irq_enable();
        assert_eq!(word(), 512);
        assert!(lg.save_fl().enabled());
        lg.irq_disable();
        assert_eq!(word(), 0);
        let saved = lg.save_fl();
        assert!(!saved.enabled());
        lg.restore_fl(IrqFlags::ENABLED);
        assert_eq!(word(), 512);
        lg.restore_fl(saved);
        assert_eq!(word(), 0);
        assert!(lg.host().done().is_empty(), "{:?}", lg.host().done());
        assert_eq!(lg.hc.counters().hypercalls, 0);
    }

    #[test]
    fn safe_halt_is_one_halt_hypercall_with_the_flag_left_to_the_host() {
        let lg = Lguest::<FakeHost>::faked(Pfn(1));
        lg.irq_disable();
        lg.safe_halt();
        let calls: Vec<u32> = lg.host().done().iter().map(|c| c.0).collect();
        assert_eq!(calls, [nr::LGUEST_INIT, nr::HALT]);
        assert_eq!(lg.hc.data().read(off::IRQ_ENABLED), 0, "the host, not the guest, enables on wake-up");
    }

    #[test]
    fn the_controller_blocks_every_irq_and_maps_vectors_to_lines() {
        let lg = Lguest::<FakeHost>::faked(Pfn(1));
        struct NoServices;
        impl Services for NoServices {
            fn map_device(&self, _: paravirt::DevicePage, _: u64) -> HvResult<usize> {
                unreachable!()
            }
        }
        lg.init(&Entries { upcall: 0, failsafe: 0 }, &NoServices).unwrap();
        assert_eq!(lg.hc.data().read(off::BLOCKED_INTERRUPTS), u32::MAX);
        lg.block(0, false);
        assert_eq!(lg.hc.data().read(off::BLOCKED_INTERRUPTS), !1);
        assert_eq!(line(32), Line::Timer);
        assert_eq!(line(33), Line::Other(1));
        assert_eq!(line(63), Line::Other(31));
        assert_eq!(line(64), Line::Other(64));
        let mut seen = Vec::new();
        lg.dispatch(32, &mut |l| seen.push(l));
        assert_eq!(seen, [Line::Timer]);
    }

    #[test]
    fn load_idt_hands_over_the_exception_irq_and_system_call_gates_in_one_batch() {
        use paravirt::Cpu;
        let lg = Lguest::<FakeHost>::faked(Pfn(1));
        let gates: &'static [u64] =
            std::boxed::Box::leak(std::vec![0x0000_8E00_0061_0000u64; 256].into_boxed_slice());
        // SAFETY: the fake host only records the gates.
        unsafe { lg.load_idt(gates) }.unwrap();
        let done = lg.host().done();
        let vectors: Vec<u32> = done.iter().filter(|c| c.0 == nr::LOAD_IDT_ENTRY).map(|c| c.1).collect();
        assert_eq!(vectors, (0..64).chain([0x80]).collect::<Vec<u32>>());
        assert!(done.iter().filter(|c| c.0 == nr::LOAD_IDT_ENTRY).all(|c| c.4), "all through the ring");
    }
}
