//! lguest-host: a small lguest host of our own, to boot-test the kernel's
//! lguest backend.
//!
//! lguest (Linux 2.6.23 to 4.13) ran a Linux guest on a Linux host with no
//! hardware virtualization at all: the guest kernel runs in ring 1, where
//! every privileged instruction faults, and asks the host for what it
//! cannot do itself through hypercalls. It no longer exists, so this crate
//! is the host, booted by QEMU (TCG) as a bare-metal multiboot kernel,
//! with the guest kernel as its module. It implements the guest ABI of
//! Linux 2.6.24.
//!
//! # How it works
//!
//! - **The Launcher** (`launcher.rs`): the guest gets a block of host RAM
//!   as its physical memory, its ELF loaded there, `boot_params` with
//!   `hardware_subarch = 1`, and a linear pagetable (all memory at 0 and at
//!   PAGE_OFFSET). It starts in ring 1 at its ELF entry.
//! - **The Switcher** (`switcher.rs`): the host owns the real GDT, IDT and
//!   TSS. They, the trap entry code and a ring-0 stack live in the top
//!   4 MiB (the whole host is linked at 0xFFC00000), mapped at the same
//!   address in the host's pagetable and in every pagetable the guest runs
//!   on, so a trap from the guest can reach the host, which then switches
//!   to its own pagetable.
//! - **Shadow paging** (`shadow.rs`): the guest's pagetables are never
//!   loaded into CR3; the host builds shadow tables from them on demand,
//!   fault by fault, and the guest must announce every change (SET_PTE,
//!   SET_PMD, FLUSH_TLB, NEW_PGTABLE). At the end an audit (`audit.rs`)
//!   checks that every shadow entry is still backed by the guest's tables.
//! - **Hypercalls** (`hypercall.rs`) through vector 0x1f, the only gate
//!   ring 1 may use, plus the async ring in `lguest_data`; faults the guest
//!   must handle are delivered to the handlers it registered (`deliver.rs`);
//!   port I/O is skipped (`emulate.rs`).
//! - **The verdict** (`outcome.rs`): the guest prints through NOTIFY; the
//!   host reads its `Test result:` line, adds its own findings, prints its
//!   counters and ends QEMU through isa-debug-exit with the status.
//!
//! Options (QEMU `-append`): `mem=SIZE` (guest memory, default 32M). The
//! guest's command line is the module string after the file name.
#![no_std]
#![no_main]
// A run-ending error carries its message inline (there is no allocator);
// errors are rare, so moving 200 bytes on that path costs nothing.
#![allow(clippy::result_large_err)]

mod abi;
mod audit;
mod console;
mod deliver;
mod elf;
mod emulate;
mod fatal;
mod gpt;
mod guest_mem;
mod head;
mod hypercall;
mod idt;
mod launcher;
mod outcome;
mod pool;
mod shadow;
mod stats;
mod switcher;
mod trap;
mod vm;
mod watchdog;

use arch_i386::cr;
use arch_i386::layout::PAGE_OFFSET;
use boot_support::multiboot;
use paravirt::ExitStatus;

use console::say;
use fatal::{fatal, Fatal, Result};
use guest_mem::GuestMem;
use pool::Pool;
use shadow::Shadows;
use switcher::SWITCHER_ADDR;
use vm::{End, Vm};

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
        switcher::HOST_PHYS,
        head::host_phys_end(),
        SWITCHER_ADDR,
        mem >> 20,
        GUEST_BASE,
        POOL_PAGES
    );
    switcher::init(head::host_cr3());
    watchdog::init();
    let gm = GuestMem { base: GUEST_BASE, size: mem };
    let l = launcher::launch(&gm, module.start, module.end, module.cmdline)?;
    say!(
        "guest kernel loaded (entry {:#x}, end {:#x}); boot_params at 0, command line \"{}\"; Launcher pagetable {:#x}-{:#x}, pgdir {:#x}",
        l.entry,
        l.kernel_end,
        module.cmdline,
        l.tables,
        mem,
        l.pgdir
    );
    let shadows = Shadows::new(gm, Pool::new(guest_end, pool_end), switcher::guest_view_pde(), l.pgdir)?;
    let regs = switcher::take_frame();
    *regs = launcher::initial_regs(l.entry);
    say!("entering the guest in ring 1 at {:#x}", l.entry);
    Ok(Vm::new(regs, gm, shadows, l.pgdir))
}

/// Runs the guest, trap after trap, until it powers off or must stop.
fn run(mut vm: Vm) -> ! {
    loop {
        let cr0 = cr::Cr0::read();
        let cr0 = if vm.ts { cr0 | cr::Cr0Flags::TS } else { cr0 - cr::Cr0Flags::TS };
        // SAFETY: only TS changes, which makes the guest's next FPU
        // instruction trap (#NM) as it asked; paging and protection stay.
        unsafe { cr::Cr0::write(cr0) };
        switcher::run(vm.shadows.cr3(), vm.regs);
        if let Err(why) = trap::handle(&mut vm) {
            vm.end = Some(End::Killed(why));
        }
        if vm.end.is_some() {
            outcome::finish(&mut vm)
        }
    }
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
