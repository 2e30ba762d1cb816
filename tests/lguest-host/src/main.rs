//! lguest-host, the binary: what only the machine has. QEMU boots it with
//! `-kernel`, the pvops kernel as its multiboot module; the head code
//! (`head.rs`) maps it at the top of the address space, the Switcher
//! (`switcher.rs`) owns the real GDT, IDT and TSS and moves between host
//! and guest, the host's timer (`timer.rs`: the TSC, the PIT, the 8259s)
//! brings it back for the guest's clock events and lets it sleep while the
//! guest halts, the debug registers watch the guest's interrupt flag while
//! an irq waits (`watch.rs`), the Launcher (`launcher.rs`, `elf.rs`) loads
//! the guest, and `outcome.rs` ends QEMU with the verdict. Everything else
//! is the library (`lib.rs`), the watchdog included.
//!
//! Options (QEMU `-append`): `mem=SIZE` (guest memory, default 32M);
//! `lie=NAME`, a boot_params that lies (`lie.rs`). The guest's command
//! line is the module string after the file name.
#![no_std]
#![no_main]
// A run-ending error carries its message inline (there is no allocator);
// errors are rare, so moving 200 bytes on that path costs nothing.
#![allow(clippy::result_large_err)]

mod elf;
mod head;
mod launcher;
mod lie;
mod outcome;
mod switcher;
mod timer;
mod trap;
mod watch;

use arch_i386::layout::PAGE_OFFSET;
use arch_i386::{cpu, cr, rtc};
use boot_support::multiboot;
use lguest_host::clock::Clock;
use lguest_host::console::{self, say};
use lguest_host::fatal::{fatal, Fatal, Result};
use lguest_host::guest_mem::GuestMem;
use lguest_host::interrupts;
use lguest_host::layout::{HOST_PHYS, SWITCHER_ADDR, TIMER_VECTOR};
use lguest_host::phys::HostPhys;
use lguest_host::pool::Pool;
use lguest_host::shadow::Shadows;
use lguest_host::vm::{End, Vm};
use paravirt::ExitStatus;

use lguest_host::watchdog::Watchdog;
use timer::HostTimer;
use watch::FlagWatch;

/// Host-physical address of guest-physical 0.
const GUEST_BASE: u32 = 64 << 20;
const DEFAULT_MEM: u64 = 32 << 20;
const MIN_MEM: u64 = 4 << 20;
/// Pages for shadow pagetables, right after guest memory.
const POOL_PAGES: u32 = 1024;

#[no_mangle]
extern "C" fn host_main(magic: u32, mbi: u32) -> ! {
    console::init();
    if magic != multiboot::MAGIC {
        die(&fatal!("not booted by a multiboot loader (eax {:#x})", magic));
    }
    // SAFETY: QEMU passed a multiboot info at `mbi`, identity-mapped.
    let info = unsafe { multiboot::Info::read(mbi) };
    match setup(&info) {
        Ok(vm) => run(vm),
        Err(why) => die(&why),
    }
}

fn setup(info: &multiboot::Info) -> Result<Vm> {
    let mem = match info.option("mem") {
        None => DEFAULT_MEM,
        Some(s) => multiboot::parse_size(s).ok_or_else(|| fatal!("mem={}: not a size", s))?,
    };
    let max = (SWITCHER_ADDR - PAGE_OFFSET) as u64;
    if !(MIN_MEM..=max).contains(&mem) || mem % 4096 != 0 {
        return Err(fatal!("mem={:#x}: guest memory must be whole pages, 4 MiB to {} MiB", mem, max >> 20));
    }
    let mem = mem as u32;
    let module =
        info.module(0).ok_or_else(|| fatal!("no guest kernel: pass it with -initrd \"kernel.elf ARGS\""))?;
    if module.end > GUEST_BASE {
        return Err(fatal!("the guest kernel module ends at {:#x}, inside guest memory", module.end));
    }
    let guest_end = GUEST_BASE + mem;
    let pool_end = guest_end + POOL_PAGES * 4096;
    if pool_end as u64 > head::IDENTITY_MAPPED {
        return Err(fatal!(
            "mem={} MiB: guest memory and the shadow pool must end within the host's {} MiB identity map",
            mem >> 20,
            head::IDENTITY_MAPPED >> 20
        ));
    }
    if pool_end as u64 > info.ram_end {
        return Err(fatal!(
            "mem={} MiB needs {} MiB of host RAM (QEMU -m), have {} MiB",
            mem >> 20,
            (pool_end >> 20) + 1,
            info.ram_end >> 20
        ));
    }
    say!(
        "host image {:#x}-{:#x}, linked at {:#x}; guest memory {} MiB at host-physical {:#x}; {} shadow pool pages",
        HOST_PHYS,
        head::host_phys_end(),
        SWITCHER_ADDR,
        mem >> 20,
        GUEST_BASE,
        POOL_PAGES
    );
    switcher::init(head::host_cr3());
    if !cpu::probe().tsc {
        return Err(fatal!(
            "this host keeps time with the TSC, and the CPU has none (QEMU -cpu max has one)"
        ));
    }
    let tsc = timer::init();
    if tsc.khz == 0 {
        return Err(fatal!("TSC calibration: the TSC did not advance while PIT channel 2 counted"));
    }
    let wall = rtc::now();
    let clock = Clock::new(tsc.khz, cpu::rdtsc, wall.unix_seconds());
    say!(
        "TSC at {}.{:03} MHz (the least of {} measurements against PIT channel 2, the greatest {}.{:03}); wall clock {} UTC (CMOS); PIT channel 0 one-shot at vector {} for the guest's clock events",
        tsc.khz / 1000,
        tsc.khz % 1000,
        timer::CALIBRATIONS,
        tsc.worst_khz / 1000,
        tsc.worst_khz % 1000,
        wall,
        TIMER_VECTOR
    );
    // SAFETY: the head code identity-maps the first 1 GiB (checked above
    // to hold guest memory and the pool), so a host-physical address is
    // its own pointer.
    let phys = unsafe { HostPhys::new(0) };
    let gm = GuestMem { base: GUEST_BASE, size: mem, phys };
    let lie = info.option("lie");
    if let Some(lie) = lie {
        say!("lie={}: the Launcher's boot_params will lie", lie);
    }
    let l = launcher::launch(&gm, module.start, module.end, module.cmdline, lie)?;
    say!(
        "guest kernel loaded (entry {:#x}, end {:#x}); boot_params at 0, command line \"{}\"; Launcher pagetable {:#x}-{:#x}, pgdir {:#x}",
        l.entry,
        l.kernel_end,
        module.cmdline,
        l.tables,
        mem,
        l.pgdir
    );
    let shadows =
        Shadows::new(gm, Pool::new(phys, guest_end, pool_end), switcher::guest_view_pde(), l.pgdir)?;
    say!("entering the guest in ring 1 at {:#x}", l.entry);
    Ok(Vm::new(launcher::initial_regs(l.entry), gm, shadows, l.pgdir, clock))
}

/// Runs the guest, trap after trap, until it powers off or must stop.
fn run(mut vm: Vm) -> ! {
    let mut timer = HostTimer::new();
    let mut watch = FlagWatch::new();
    let mut watchdog = Watchdog::new();
    loop {
        if let Err(why) = step(&mut vm, &mut timer, &mut watch, &mut watchdog) {
            vm.end = Some(End::Killed(why));
        }
        if vm.end.is_some() {
            outcome::finish(&mut vm)
        }
    }
}

/// One turn of 2.6.24's `run_guest` loop: interrupts first; then, if the
/// guest is halted, sleep until the host's timer; otherwise run it (with
/// the host's timer armed, and watching its interrupt flag if an irq
/// waits) until its next exit and handle that.
fn step(vm: &mut Vm, timer: &mut HostTimer, watch: &mut FlagWatch, watchdog: &mut Watchdog) -> Result {
    interrupts::before_entry(vm)?;
    if vm.irqs.halted {
        return timer.idle(vm);
    }
    timer.arm_for(vm);
    watch.apply(vm);
    let cr0 = cr::Cr0::read();
    let cr0 = if vm.ts { cr0 | cr::Cr0Flags::TS } else { cr0 - cr::Cr0Flags::TS };
    // SAFETY: only TS changes, which makes the guest's next FPU
    // instruction trap (#NM) as it asked; paging and protection stay.
    unsafe { cr::Cr0::write(cr0) };
    switcher::run(vm.shadows.cr3(), &mut vm.regs, &mut vm.gdt);
    trap::handle(vm, timer, watchdog)
}

/// The host cannot even start the guest: the environment is wrong.
fn die(why: &Fatal) -> ! {
    say!("{}", why);
    console::host_result(ExitStatus::Error, why);
    outcome::exit(ExitStatus::Error)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let why = fatal!("panic: {}", info);
    say!("{}", why);
    outcome::host_failure(&why, console::GUEST_RESULT.load(core::sync::atomic::Ordering::Relaxed))
}
