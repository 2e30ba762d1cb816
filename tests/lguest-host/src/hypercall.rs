//! Hypercalls: `int $0x1f` from ring 1 (the only gate the guest may use),
//! eax = the call, edx/ebx/ecx = arguments 1-3.
//!
//! Before a trapped hypercall is handled, the async ring in `lguest_data`
//! is drained: from the host's cursor on, every slot the guest marked
//! pending (0) is done in order and marked done (0xFF). That is how the
//! guest batches pagetable updates: queue them, and let the next real
//! hypercall (or an explicit FLUSH_ASYNC) carry them all in one trap.

use crate::abi::{self, off, IRQ_ENABLED, RING_SIZE, STATUS_DONE, SYSCALL_VECTOR};
use crate::console::say;
use crate::fatal::{fatal, msg, Result};
use crate::layout::{self, SWITCHER_SIZE};
use crate::vm::{End, Vm};

/// The longest string NOTIFY or CRASH may pass.
const STRING_MAX: u32 = 4096;

/// A trapped hypercall; the guest's registers are in the trap frame.
pub fn trap(vm: &mut Vm) -> Result {
    let r = &mut vm.regs;
    let (call, a1, a2, a3) = (r.eax, r.edx, r.ebx, r.ecx);
    r.eax = 0;
    if vm.data.is_none() && call != abi::LGUEST_INIT {
        return Err(fatal!("hypercall {} ({}) before LGUEST_INIT", call, abi::name(call)));
    }
    if vm.data.is_some() {
        drain(vm)?;
    }
    if let Some(n) = vm.stats.sync.get_mut(call as usize) {
        *n += 1;
    }
    if vm.end.is_some() {
        return Ok(());
    }
    dispatch(vm, call, a1, a2, a3)
}

/// Does every pending call of the async ring, in order.
fn drain(vm: &mut Vm) -> Result {
    let ring = vm.data_field(0)?;
    for _ in 0..RING_SIZE {
        let n = vm.next_hcall;
        let status = ring + off::HCALL_STATUS + n;
        if vm.mem.read_u8(status, "hcall_status")? == STATUS_DONE {
            break;
        }
        let at = ring + off::HCALLS + n * off::HCALL_SIZE;
        let word = |i: u32| vm.mem.read_u32(at + 4 * i, "hcalls");
        // struct hcall_args: eax (the call), ebx (arg2), ecx (arg3), edx (arg1).
        let (call, a2, a3, a1) = (word(0)?, word(1)?, word(2)?, word(3)?);
        vm.next_hcall = (n + 1) % RING_SIZE;
        if let Some(c) = vm.stats.drained.get_mut(call as usize) {
            *c += 1;
        }
        dispatch(vm, call, a1, a2, a3)?;
        vm.mem.write_u8(status, STATUS_DONE, "hcall_status")?;
        if vm.end.is_some() {
            break;
        }
    }
    Ok(())
}

fn dispatch(vm: &mut Vm, call: u32, a1: u32, a2: u32, a3: u32) -> Result {
    match call {
        abi::FLUSH_ASYNC => Ok(()),
        abi::LGUEST_INIT => init(vm, a1),
        abi::CRASH => crash(vm, a1),
        abi::LOAD_GDT => load_gdt(vm, a1, a2),
        abi::NEW_PGTABLE => vm.shadows.switch_to(a1),
        abi::FLUSH_TLB => {
            vm.shadows.flush(a1 != 0);
            Ok(())
        }
        abi::LOAD_IDT_ENTRY => vm.idt.load(a1, a2, a3),
        abi::SET_STACK => set_stack(vm, a1, a2, a3),
        abi::TS => {
            vm.ts = a1 != 0;
            Ok(())
        }
        abi::SET_CLOCKEVENT => {
            let now = vm.clock.now();
            vm.clockevent.set(now, a1);
            Ok(())
        }
        abi::HALT => {
            // Nothing more here: before the next entry the host either
            // wakes the guest for a pending irq or sleeps (`interrupts`).
            vm.irqs.halted = true;
            vm.irqs.stats.halts += 1;
            Ok(())
        }
        abi::SET_PTE => vm.shadows.set_pte(a1, a2, a3),
        abi::SET_PMD => {
            vm.shadows.set_pmd(a1, a2);
            Ok(())
        }
        abi::NOTIFY => notify(vm, a1),
        n => Err(fatal!("hypercall {} ({}) is not implemented by this host", n, abi::name(n))),
    }
}

/// LGUEST_INIT(pa of lguest_data): the guest's first hypercall.
fn init(vm: &mut Vm, data: u32) -> Result {
    if vm.data.is_some() {
        return Err(fatal!("a second LGUEST_INIT"));
    }
    if !vm.mem.contains(data, off::SIZE) {
        return Err(fatal!("LGUEST_INIT({:#x}): lguest_data is not in guest memory", data));
    }
    let m = vm.mem;
    const W: &str = "lguest_data";
    // The vector user mode makes system calls at: the Switcher's gate for
    // it is fixed, and 2.6.24's host knew no other either.
    let syscall_vec = m.read_u32(data + off::SYSCALL_VEC, W)?;
    if syscall_vec != SYSCALL_VECTOR {
        return Err(fatal!(
            "LGUEST_INIT: lguest_data.syscall_vec is {:#x}; this host (as 2.6.24's) takes system calls at {:#x} only",
            syscall_vec,
            SYSCALL_VECTOR
        ));
    }
    vm.data = Some(data);
    // 2.6.24's order: the TSC's rate, the noirq window (read once, now),
    // the wall clock, then the memory layout.
    m.write_u32(data + off::TSC_KHZ, vm.clock.tsc_khz, W)?;
    vm.irqs.noirq = (m.read_u32(data + off::NOIRQ_START, W)?, m.read_u32(data + off::NOIRQ_END, W)?);
    vm.irqs.flag_va = crate::interrupts::guest_va(data + off::IRQ_ENABLED);
    crate::interrupts::write_timestamp(vm, vm.clock.now())?;
    m.write_u32(data + off::RESERVE_MEM, SWITCHER_SIZE, W)?;
    m.write_u32(data + off::PGDIR, vm.launcher_pgdir, W)?;
    let kernel_address = m.read_u32(data + off::KERNEL_ADDRESS, W)?;
    if kernel_address != 0 {
        vm.shadows.kernel_address = kernel_address;
    }
    vm.console.break_line();
    let irq_enabled = m.read_u32(data + off::IRQ_ENABLED, W)?;
    say!(
        "LGUEST_INIT: lguest_data at guest-physical {:#x}, kernel_address {:#x}, noirq {:#x}-{:#x}, syscall_vec {:#x}, interrupts {}; tsc_khz {}",
        data,
        kernel_address,
        vm.irqs.noirq.0,
        vm.irqs.noirq.1,
        syscall_vec,
        if irq_enabled & IRQ_ENABLED != 0 { "enabled" } else { "disabled" },
        vm.clock.tsc_khz
    );
    Ok(())
}

/// CRASH(pa of a message): "Power down" is a power-off.
fn crash(vm: &mut Vm, msg: u32) -> Result {
    let mut text = msg!("");
    vm.mem.cstr(msg, STRING_MAX, "the CRASH message", |b| {
        let _ = core::fmt::Write::write_char(&mut text, b as char);
    })?;
    vm.end = Some(if text.as_str() == "Power down" { End::PowerOff } else { End::Crashed(text) });
    Ok(())
}

/// NOTIFY(pa): no virtqueues here, so it is always the early console.
fn notify(vm: &mut Vm, pa: u32) -> Result {
    let Vm { mem, console, .. } = vm;
    mem.cstr(pa, STRING_MAX, "NOTIFY's string", |b| console.put(b))?;
    Ok(())
}

/// SET_STACK(ss, esp, pages): where traps from ring 3 switch to.
fn set_stack(vm: &mut Vm, ss: u32, esp: u32, pages: u32) -> Result {
    if ss & 3 != 1 {
        return Err(fatal!("SET_STACK: segment {:#x} is not a ring-1 one", ss));
    }
    if pages > 2 {
        return Err(fatal!("SET_STACK: {} stack pages (at most 2)", pages));
    }
    vm.kernel_stack = Some((ss, esp));
    Ok(())
}

/// LOAD_GDT(pa, entries): the guest's segments go into the real GDT, except
/// the host's own slots. Code and data segments only, raised to ring 1 at
/// least, with the accessed bit set (the guest view maps the GDT
/// read-only, so the CPU must never need to write it).
fn load_gdt(vm: &mut Vm, gdt: u32, entries: u32) -> Result {
    if entries as usize > layout::GDT_ENTRIES {
        return Err(fatal!("LOAD_GDT: {} entries (at most {})", entries, layout::GDT_ENTRIES));
    }
    for i in 0..entries as usize {
        if layout::host_owned(i) {
            continue;
        }
        let lo = vm.mem.read_u32(gdt + i as u32 * 8, "the guest's GDT")?;
        let hi = vm.mem.read_u32(gdt + i as u32 * 8 + 4, "the guest's GDT")?;
        let mut d = (hi as u64) << 32 | lo as u64;
        let present = d & (1 << 47) != 0;
        let segment = d & (1 << 44) != 0;
        if !present || !segment {
            d = 0;
        } else {
            if (d >> 45) & 3 == 0 {
                d |= 1 << 45;
            }
            d |= 1 << 40;
        }
        vm.gdt.set(i, d);
    }
    Ok(())
}
