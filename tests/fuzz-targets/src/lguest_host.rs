//! The lguest host's hypercall and async-ring decoding: the host must
//! survive any guest. The input is a guest: its first byte says how many
//! 16-byte hypercalls it makes (eax, edx, ebx, ecx, as it would trap with
//! `int $0x1f`), and the rest is its memory from guest-physical 0, where
//! `LGUEST_INIT` may point `lguest_data` and its ring. Every call either
//! does what it says or stops the guest with a reason; none may panic the
//! host, and the shadow audit must still run.

use std::vec;

use lguest_host::clock::Clock;
use lguest_host::guest_mem::GuestMem;
use lguest_host::layout::GuestRegs;
use lguest_host::phys::HostPhys;
use lguest_host::pool::Pool;
use lguest_host::shadow::Shadows;
use lguest_host::vm::Vm;
use lguest_host::{audit, hypercall};

/// Host-physical layout, as the host's own tests have it but smaller (each
/// input builds a machine): 1 MiB of guest memory at 16 MiB, then a
/// 16-page shadow pool.
const BASE: u32 = 16 << 20;
const GUEST: u32 = 1 << 20;
const POOL: u32 = 16 * 4096;
const PGDIR: u32 = GUEST - 4096;
const CALL: usize = 16;

fn tsc() -> u64 {
    0
}

pub fn run(data: &[u8]) {
    let Some((&calls, rest)) = data.split_first() else { return };
    let (calls, memory) = rest.split_at((calls as usize * CALL).min(rest.len()));
    let mut buf = vec![0u8; (GUEST + POOL) as usize].into_boxed_slice();
    let n = memory.len().min((PGDIR) as usize);
    buf[..n].copy_from_slice(&memory[..n]);
    let origin = buf.as_mut_ptr().expose_provenance().wrapping_sub(BASE as usize);
    // SAFETY: every host-physical address the host uses, [BASE, BASE +
    // GUEST + POOL), is inside `buf` (exposed above), which outlives the
    // Vm: declared later, the Vm is dropped first.
    let phys = unsafe { HostPhys::new(origin) };
    let mem = GuestMem { base: BASE, size: GUEST, phys };
    let pool = Pool::new(phys, BASE + GUEST, BASE + GUEST + POOL);
    let Ok(shadows) = Shadows::new(mem, pool, 0, PGDIR) else { return };
    let mut vm = Vm::new(GuestRegs::default(), mem, shadows, PGDIR, Clock::new(1_000_000, tsc, 0));
    for c in calls.chunks_exact(CALL) {
        let w = |i: usize| u32::from_le_bytes(c[4 * i..4 * i + 4].try_into().unwrap());
        (vm.regs.eax, vm.regs.edx, vm.regs.ebx, vm.regs.ecx) = (w(0), w(1), w(2), w(3));
        // A fatal error kills the guest, as in the host's run loop.
        if hypercall::trap(&mut vm).is_err() || vm.end.is_some() {
            break;
        }
    }
    let _ = audit::run(&vm.shadows);
}
