//! The host's logic on the development machine: shadow paging, the audit,
//! hypercall and ring decoding, against guest memory in a buffer.

extern crate std;

use std::boxed::Box;
use std::vec;

use crate::abi::{self, off, STATUS_DONE};
use crate::gpt::{P, RW, USER};
use crate::guest_mem::GuestMem;
use crate::layout::GuestRegs;
use crate::phys::HostPhys;
use crate::pool::Pool;
use crate::shadow::Shadows;
use crate::vm::{End, Vm};

/// Host-physical layout of the test machine: 4 MiB of guest memory at
/// 16 MiB, then a 64-page shadow pool.
const BASE: u32 = 16 << 20;
const GUEST: u32 = 4 << 20;
const POOL: u32 = 64 * 4096;
/// The guest's pgdir and one pte page, near the top of its memory.
const PGDIR: u32 = GUEST - 4096;
const PTE: u32 = GUEST - 8192;

struct Machine {
    _buf: Box<[u8]>,
    vm: Vm,
}

fn machine() -> Machine {
    let mut buf = vec![0u8; (GUEST + POOL) as usize].into_boxed_slice();
    let origin = (buf.as_mut_ptr().expose_provenance()).wrapping_sub(BASE as usize);
    // SAFETY: every host-physical address the host uses, [BASE, BASE +
    // GUEST + POOL), is inside `buf` (exposed above), which outlives the
    // Machine's Vm.
    let phys = unsafe { HostPhys::new(origin) };
    let mem = GuestMem { base: BASE, size: GUEST, phys };
    let pool = Pool::new(phys, BASE + GUEST, BASE + GUEST + POOL);
    let shadows = Shadows::new(mem, pool, 0, PGDIR).unwrap();
    let vm = Vm::new(GuestRegs::default(), mem, shadows, PGDIR);
    Machine { _buf: buf, vm }
}

/// Maps guest va 0xC0000000 + i * 4K to guest frame `frame` with `perm`
/// in the test pgdir.
fn map(m: &Machine, i: u32, frame: u32, perm: u32) {
    m.vm.mem.write_u32(PGDIR + 768 * 4, PTE | P | RW | USER, "pgd").unwrap();
    m.vm.mem.write_u32(PTE + i * 4, (frame << 12) | perm, "pte").unwrap();
}

#[test]
fn a_shadow_is_filled_on_demand_and_the_audit_sees_an_untold_change() {
    let mut m = machine();
    map(&m, 0, 5, P | RW);
    // A write the guest's tables allow: the host's miss, filled.
    assert!(m.vm.shadows.fault(0xC000_0000, 0x2).unwrap());
    assert_eq!(crate::audit::run(&m.vm.shadows), 0);
    // The guest makes the page read-only without telling: stale.
    map(&m, 0, 5, P);
    assert_eq!(crate::audit::run(&m.vm.shadows), 1);
    // Told with SET_PTE: the shadow follows.
    m.vm.shadows.set_pte(PGDIR, 0xC000_0000, (5 << 12) | P).unwrap();
    assert_eq!(crate::audit::run(&m.vm.shadows), 0);
}

#[test]
fn faults_the_guests_tables_forbid_are_the_guests() {
    let mut m = machine();
    map(&m, 1, 6, P);
    assert!(!m.vm.shadows.fault(0xC000_1000, 0x2).unwrap(), "a write to a read-only page");
    assert!(!m.vm.shadows.fault(0xC000_1000, 0x4).unwrap(), "a user access to a kernel page");
    assert!(!m.vm.shadows.fault(0xC000_2000, 0).unwrap(), "nothing mapped");
    map(&m, 2, 7, P | USER);
    assert!(m.vm.shadows.fault(0xC000_2000, 0x4).unwrap());
}

#[test]
fn a_frame_beyond_guest_memory_stops_the_guest_not_the_host() {
    let mut m = machine();
    map(&m, 3, 0xFFFFF, P | RW);
    let e = m.vm.shadows.fault(0xC000_3000, 0).unwrap_err();
    assert!(e.as_str().contains("beyond its 4 MiB"), "{e}");
    m.vm.mem.write_u32(PGDIR + 769 * 4, 0xFFFF_F000 | P, "pgd").unwrap();
    assert!(m.vm.shadows.fault(0xC040_0000, 0).is_err());
}

#[test]
fn more_than_four_pgdirs_evict_round_robin_never_the_current_one() {
    let mut m = machine();
    for k in 1..=6 {
        m.vm.shadows.switch_to(PGDIR - k * 0x2000).unwrap();
        assert_eq!(m.vm.shadows.gpgdir(), PGDIR - k * 0x2000);
    }
    assert_eq!(m.vm.shadows.slots_used(), crate::shadow::SLOTS);
    assert_eq!(m.vm.shadows.stats.evictions, 3);
    assert!(m.vm.shadows.switch_to(GUEST).is_err(), "a pgdir outside guest memory");
    assert!(m.vm.shadows.switch_to(0x1001).is_err(), "an unaligned pgdir");
}

/// Registers `lguest_data` at guest-physical `data` with LGUEST_INIT.
fn init(m: &mut Machine, data: u32) {
    for i in 0..64 {
        m.vm.mem.write_u8(data + off::HCALL_STATUS + i, STATUS_DONE, "ring").unwrap();
    }
    hypercall(m, abi::LGUEST_INIT, data, 0, 0);
    assert_eq!(m.vm.data, Some(data));
}

fn hypercall(m: &mut Machine, call: u32, a1: u32, a2: u32, a3: u32) {
    m.vm.regs = GuestRegs { eax: call, edx: a1, ebx: a2, ecx: a3, ..GuestRegs::default() };
    crate::hypercall::trap(&mut m.vm).unwrap();
}

#[test]
fn the_async_ring_is_drained_in_order_before_a_trapped_call() {
    let mut m = machine();
    let data = 0x1000;
    init(&mut m, data);
    assert_eq!(m.vm.mem.read_u32(data + off::RESERVE_MEM, "").unwrap(), crate::layout::SWITCHER_SIZE);
    map(&m, 0, 5, P | RW);
    assert!(m.vm.shadows.fault(0xC000_0000, 0x2).unwrap());
    // Two queued SET_PTEs (hcall_args: eax, ebx = arg2, ecx = arg3, edx =
    // arg1), the second undoing the first.
    let post = |m: &Machine, slot: u32, va: u32, val: u32| {
        let at = data + off::HCALLS + slot * off::HCALL_SIZE;
        for (i, w) in [abi::SET_PTE, va, val, PGDIR].into_iter().enumerate() {
            m.vm.mem.write_u32(at + 4 * i as u32, w, "hcalls").unwrap();
        }
        m.vm.mem.write_u8(data + off::HCALL_STATUS + slot, 0, "status").unwrap();
    };
    map(&m, 0, 5, P);
    post(&m, 0, 0xC000_0000, (5 << 12) | P);
    post(&m, 1, 0xC000_1000, 0);
    hypercall(&mut m, abi::FLUSH_ASYNC, 0, 0, 0);
    assert_eq!(m.vm.stats.drained[abi::SET_PTE as usize], 2);
    assert_eq!(m.vm.mem.read_u8(data + off::HCALL_STATUS, "").unwrap(), STATUS_DONE);
    assert_eq!(crate::audit::run(&m.vm.shadows), 0, "the queued update reached the shadow");
}

#[test]
fn a_bad_guest_is_stopped_with_a_reason() {
    let mut m = machine();
    m.vm.regs.eax = abi::SET_PTE;
    let e = crate::hypercall::trap(&mut m.vm).unwrap_err();
    assert!(e.as_str().contains("before LGUEST_INIT"), "{e}");
    init(&mut m, 0x1000);
    m.vm.regs = GuestRegs { eax: 99, ..GuestRegs::default() };
    assert!(crate::hypercall::trap(&mut m.vm).is_err());
    m.vm.regs = GuestRegs { eax: abi::NOTIFY, edx: GUEST + 10, ..GuestRegs::default() };
    assert!(crate::hypercall::trap(&mut m.vm).is_err(), "a string outside guest memory");
}

#[test]
fn power_down_ends_the_run() {
    let mut m = machine();
    init(&mut m, 0x1000);
    m.vm.mem.write_bytes(0x3000, b"Power down\0", "msg").unwrap();
    hypercall(&mut m, abi::CRASH, 0x3000, 0, 0);
    assert!(matches!(m.vm.end, Some(End::PowerOff)));
}
