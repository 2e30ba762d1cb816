//! lguest: the kernel as a guest of Rusty Russell's Linux-on-Linux
//! hypervisor, in its Linux 2.6.24 form (the project's own host,
//! `tests/lguest-host`, implements the other side).
//!
//! An lguest guest runs in ring 1. The host owns the real GDT, IDT and
//! pagetables: it maps a small "Switcher" at the top 4 MiB of every
//! address space (the code that moves between host and guest), and it
//! never loads the guest's pagetables into CR3. Instead it keeps *shadow*
//! pagetables, filled on demand from the guest's ones when the guest page
//! faults. So the guest must tell the host about every pagetable change.
//!
//! What differs from native, and therefore all this backend overrides:
//! - platform: detection (the Launcher enters through the Linux boot
//!   protocol with `boot_params.hardware_subarch = 1`); `init`
//!   (LGUEST_INIT registers `lguest_data`, `shared.rs`, the page the guest
//!   and host share; the Launcher's linear map is measured and its pages
//!   reserved, `launcher_map.rs`); the console is NOTIFY (`console.rs`);
//!   power-off is CRASH("Power down"), and the host turns the guest's
//!   result line into QEMU's exit status;
//! - paging policy: 2-level only, no large or global pages, the
//!   Switcher's 4 MiB kept free;
//! - MMU: every write to a table the host shadows is announced with
//!   SET_PTE/SET_PMD, batched on the async ring in lazy-MMU mode
//!   (`ring.rs`, `hypercall.rs`); CR3 is NEW_PGTABLE (`pagetable.rs`);
//! - CPU: the IDT goes to the host one gate at a time (LOAD_IDT_ENTRY), the
//!   exceptions', the 32 irqs' (vectors 0-63) and the system call's
//!   (0x80); the kernel stack for entries from user mode is SET_STACK,
//!   the segments the host's GDT numbering (`selectors`); cr2 is read from
//!   `lguest_data`; the interrupt return restores the virtual interrupt
//!   flag inside a window the host never interrupts (`iret.rs`);
//! - interrupts: the flag is `lguest_data.irq_enabled`, written without a
//!   hypercall; halting is HALT; the host injects irqs, blocked or not in
//!   `blocked_interrupts` (`irq.rs`);
//! - time: the TSC at the rate the host states, the wall clock the host
//!   writes, and a one-shot timer armed by SET_CLOCKEVENT (`time.rs`).
//!
//! Every call to the host goes through one seam (`transport.rs`), which
//! host tests replace with a fake host that drains the ring.

#![no_std]

pub mod abi;
mod console;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod hypercall;
pub mod iret;
pub mod irq;
pub mod launcher_map;
pub mod pagetable;
pub mod ring;
pub mod shared;
pub mod time;
pub mod transport;

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use arch_i386::cpu::CpuFeatures;
use arch_i386::desc::{layout, Selectors, Tss};
use arch_i386::layout::PAGE_OFFSET;
use arch_i386::{PagingMode, Pfn, VirtAddr};
use linkme::distributed_slice;
use paravirt::bootinfo::{BootInfoError, SUBARCH_LGUEST};
use paravirt::{
    BootInfo, Counters, Cpu, Detected, ExitStatus, HvError, HvResult, Hypervisor, Irq, Mmu, PagingPolicy,
    Time, Verdict, HYPERVISORS,
};
use spin::Once;

use abi::{nr, off, FIRST_EXTERNAL_VECTOR, LGUEST_IRQS, SYSCALL_VECTOR};
use hypercall::Hypercalls;
use transport::{Host, Trap};

pub struct Lguest<H = Trap> {
    hc: Hypercalls<H>,
    /// The pgdir the guest runs on (a guest pfn); the host knows it from
    /// NEW_PGTABLE, a ring-1 guest cannot read CR3.
    cr3: AtomicU32,
    /// Shadowed entries were written that the host has not been told about.
    unannounced: AtomicBool,
    /// `lguest_data.reserve_mem`, read at init.
    reserve_mem: AtomicU32,
    /// The clock source, once `Time::init` has run.
    clock: Once<time::TscClock>,
}

static LGUEST_PV: Lguest = Lguest::new(Trap);

impl<H: Host> Lguest<H> {
    pub const fn new(host: H) -> Lguest<H> {
        Lguest {
            hc: Hypercalls::new(host),
            cr3: AtomicU32::new(0),
            unannounced: AtomicBool::new(false),
            reserve_mem: AtomicU32::new(0),
            clock: Once::new(),
        }
    }
}

/// Reads entry `i` of a guest frame through the Launcher's map.
fn read_frame(pfn: Pfn, i: u32) -> u32 {
    assert!(i < 1024);
    // SAFETY: `launcher_map::scan` asks only for frames below the memory it
    // was given, which the Launcher maps at PAGE_OFFSET (all of guest
    // memory below the Switcher); i < 1024 entries of the frame.
    unsafe { ((PAGE_OFFSET + (pfn.0 << 12)) as *const u32).add(i as usize).read_volatile() }
}

impl<H: Host> Hypervisor for Lguest<H> {
    fn name(&self) -> &'static str {
        "lguest"
    }

    fn detect(&self, boot: &BootInfo) -> Verdict {
        match boot.hardware_subarch() {
            Some(SUBARCH_LGUEST) => {
                Ok(Detected { priority: 100, why: "boot_params.hardware_subarch = 1 (lguest)" })
            }
            Some(_) => Err("boot_params.hardware_subarch is not 1"),
            None => Err("not entered through the Linux boot protocol"),
        }
    }

    fn init(&self, boot: &mut BootInfo) -> HvResult {
        self.hc.ensure_init();
        let d = self.hc.data();
        let reserve = d.read(off::RESERVE_MEM);
        let pgdir = d.read(off::PGDIR);
        self.reserve_mem.store(reserve, Ordering::Relaxed);
        if pgdir == 0 || pgdir & 0xFFF != 0 {
            return Err(HvError::local("lguest: bad lguest_data.pgdir after LGUEST_INIT", &[pgdir as u64]));
        }
        // Frames the direct map can reach below the Switcher.
        let reachable = (0u32.wrapping_sub(PAGE_OFFSET).wrapping_sub(reserve)) >> 12;
        let ram_pages = ((boot.memory.ram_end_below_4g() >> 12) as u32).min(reachable);
        let map = launcher_map::scan(Pfn(pgdir >> 12), ram_pages, read_frame)
            .map_err(|why| HvError::local(why, &[pgdir as u64, ram_pages as u64]))?;
        // The Launcher maps all of guest memory: RAM the map claims past
        // that (but within the direct map's reach) is a boot_params lie.
        if ram_pages > map.end.0 {
            let (ram_end, real_end) = ((ram_pages as u64) << 12, (map.end.0 as u64) << 12);
            return Err(BootInfoError::RamOutside { map: boot.memory.source, ram_end, real_end }.into());
        }
        self.cr3.store(pgdir >> 12, Ordering::Relaxed);
        boot.early_mapped_end = map.end;
        for &(start, end) in map.runs() {
            boot.reserve(start, end)?;
        }
        match boot.cmdline.get_u32("lguest_skip_notify") {
            Ok(n) => self.hc.skip_updates_from(n.unwrap_or(0)),
            Err(_) => return Err(HvError::local("lguest: lguest_skip_notify= takes a number", &[])),
        }
        log::info!(
            "lguest: lguest_data at pa {:#x}; the Launcher's pgdir at pa {:#x} maps pfn 0-{:#x} at PAGE_OFFSET; the Switcher keeps the top {} MiB",
            self.hc.host.data_pa(),
            pgdir,
            map.end.0,
            reserve >> 20
        );
        for &(start, end) in map.runs() {
            log::info!("lguest: the Launcher's pagetable pages: pfn {:#x}-{:#x} reserved", start.0, end.0);
        }
        Ok(())
    }

    fn console_write(&self, bytes: &[u8]) {
        console::write(&self.hc, bytes)
    }

    fn shutdown(&self, _status: ExitStatus) -> ! {
        // The host decides QEMU's exit status from the result line the
        // kernel printed; CRASH("Power down") is lguest's power-off.
        let msg = (abi::POWER_DOWN.as_ptr() as usize as u32).wrapping_sub(PAGE_OFFSET);
        loop {
            self.hc.call(nr::CRASH, msg, 0, 0);
        }
    }

    fn counters(&self) -> Counters {
        self.hc.counters()
    }

    fn paging(&self) -> &dyn PagingPolicy {
        self
    }

    fn mmu(&self) -> &dyn Mmu {
        self
    }

    fn cpu(&self) -> &dyn Cpu {
        self
    }

    fn irq(&self) -> &dyn Irq {
        self
    }

    fn time(&self) -> &dyn Time {
        self
    }
}

impl<H: Host> PagingPolicy for Lguest<H> {
    fn paging_modes(&self, _: &CpuFeatures) -> &'static [PagingMode] {
        // The 2.6.24 host shadows 2-level tables only.
        &[PagingMode::TwoLevel]
    }

    fn large_pages(&self, _: &CpuFeatures) -> bool {
        false
    }

    fn global_pages(&self, _: &CpuFeatures) -> bool {
        false
    }

    fn reserved_top(&self) -> u32 {
        self.reserve_mem.load(Ordering::Relaxed)
    }
}

impl<H: Host> Cpu for Lguest<H> {
    unsafe fn load_idt(&self, gates: &'static [u64]) -> HvResult {
        // One gate per call, in one batch: the exceptions, the vectors the
        // host injects irqs at, and the system call's (`syscall_vec`, the
        // only gate above the irqs' the host keeps). The host ignores the
        // vectors it keeps for itself (NMI, #DF, 15, the hypercall trap).
        let irqs = 0..FIRST_EXTERNAL_VECTOR + LGUEST_IRQS;
        let vectors = irqs.chain(core::iter::once(SYSCALL_VECTOR));
        self.hc.enter_lazy();
        let mut result = Ok(());
        for v in vectors {
            let Some(&g) = gates.get(v as usize) else { break };
            result = self.hc.queue(nr::LOAD_IDT_ENTRY, v, g as u32, (g >> 32) as u32);
            if result.is_err() {
                break;
            }
        }
        self.hc.leave_lazy();
        result
    }

    fn read_cr2(&self) -> VirtAddr {
        VirtAddr(self.hc.data().read(off::CR2))
    }

    fn iret(&self) -> u32 {
        iret::address()
    }

    /// The host's GDT in Linux's numbering, the kernel's segments at ring 1.
    fn selectors(&self) -> Selectors {
        Selectors {
            kernel_cs: layout::KERNEL_CS | 1,
            kernel_ds: layout::KERNEL_DS | 1,
            user_cs: layout::USER_CS,
            user_ds: layout::USER_DS,
        }
    }

    /// SET_STACK(ss, esp, pages): queued in lazy mode (a context switch
    /// batches it with its NEW_PGTABLE), at once otherwise, as 2.6.24's
    /// `lguest_load_esp0` does.
    unsafe fn load_sp0(&self, _tss: *mut Tss, sp0: u32) -> HvResult {
        self.hc.queue(nr::SET_STACK, (layout::KERNEL_DS | 1) as u32, sp0, KERNEL_STACK_PAGES)
    }
}

/// Pages of a kernel stack, as SET_STACK states it.
pub const KERNEL_STACK_PAGES: u32 = 2;

#[distributed_slice(HYPERVISORS)]
static LGUEST: &'static dyn Hypervisor = &LGUEST_PV;
