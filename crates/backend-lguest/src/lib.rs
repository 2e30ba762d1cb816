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
//! - detection: the Launcher enters through the Linux boot protocol with
//!   `boot_params.hardware_subarch = 1`;
//! - `init`: LGUEST_INIT registers `lguest_data` (`shared.rs`), the page
//!   the guest and host share; the Launcher's linear map is measured and
//!   its pages reserved (`launcher_map.rs`);
//! - pagetables: 2-level only, no large or global pages, the Switcher's
//!   4 MiB kept free; every entry write is announced with SET_PTE/SET_PMD
//!   (`announce.rs`), batched on the async ring in lazy-MMU mode
//!   (`ring.rs`, `hypercall.rs`); CR3 is NEW_PGTABLE (`pagetable.rs`);
//! - the IDT goes to the host one gate at a time (LOAD_IDT_ENTRY), cr2 is
//!   read from `lguest_data`;
//! - the console is NOTIFY (`console.rs`); power-off is CRASH("Power
//!   down"), and the host turns the guest's result line into QEMU's exit
//!   status.
//!
//! Interrupts stay off: `irq_enabled` is 0 and no clock is asked for.

#![no_std]

pub mod abi;
pub mod announce;
mod console;
pub mod hypercall;
pub mod launcher_map;
pub mod pagetable;
pub mod ring;
mod shared;

use core::sync::atomic::{AtomicU32, Ordering};

use arch_i386::cpu::CpuFeatures;
use arch_i386::layout::PAGE_OFFSET;
use arch_i386::{PagingMode, Pfn, PteFlags, VirtAddr};
use linkme::distributed_slice;
use paravirt::bootinfo::SUBARCH_LGUEST;
use paravirt::{
    BootInfo, Counters, Detected, EntryRef, ExitStatus, HvError, HvResult, Hypervisor, PagetableSetup,
    Verdict, HYPERVISORS,
};

use abi::nr;
use shared::{field, LGUEST_DATA};

pub struct Lguest;

/// `lguest_data.reserve_mem`, read at init.
static RESERVE_MEM: AtomicU32 = AtomicU32::new(0);

fn pa(pfn: Pfn) -> u32 {
    pfn.addr().0 as u32
}

/// Reads entry `i` of a guest frame through the Launcher's map.
fn read_frame(pfn: Pfn, i: u32) -> u32 {
    // SAFETY: callers pass frames inside guest memory (checked against the
    // memory map, which is below 1 GiB), all of which the Launcher maps at
    // PAGE_OFFSET; i < 1024.
    unsafe { ((PAGE_OFFSET + (pfn.0 << 12)) as *const u32).add(i as usize).read_volatile() }
}

impl Hypervisor for Lguest {
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
        hypercall::ensure_init();
        let reserve = LGUEST_DATA.read(field!(reserve_mem));
        let pgdir = LGUEST_DATA.read(field!(pgdir));
        RESERVE_MEM.store(reserve, Ordering::Relaxed);
        if pgdir == 0 || pgdir & 0xFFF != 0 {
            return Err(HvError::new(
                "lguest: bad lguest_data.pgdir after LGUEST_INIT",
                &[pgdir as u64],
                -22,
            ));
        }
        // Frames the direct map can reach below the Switcher.
        let reachable = (0u32.wrapping_sub(PAGE_OFFSET).wrapping_sub(reserve)) >> 12;
        let ram_pages = ((boot.memory.ram_end_below_4g() >> 12) as u32).min(reachable);
        let map = launcher_map::scan(Pfn(pgdir >> 12), ram_pages, read_frame)
            .map_err(|why| HvError::new(why, &[pgdir as u64, ram_pages as u64], -22))?;
        pagetable::set_root(Pfn(pgdir >> 12));
        boot.early_mapped_end = map.end;
        for &(start, end) in map.runs() {
            if !boot.reserve(start, end) {
                return Err(HvError::new("lguest: too many reserved ranges", &[start.0 as u64], -12));
            }
        }
        if let Some(n) = boot.cmdline.get("lguest_skip_notify") {
            announce::skip_update(n.parse().unwrap_or(0));
        }
        log::info!(
            "lguest: lguest_data at pa {:#x}; the Launcher's pgdir at pa {:#x} maps pfn 0-{:#x} at PAGE_OFFSET; the Switcher keeps the top {} MiB",
            LGUEST_DATA.pa(),
            pgdir,
            map.end.0,
            reserve >> 20
        );
        for &(start, end) in map.runs() {
            log::info!("lguest: the Launcher's pagetable pages: pfn {:#x}-{:#x} reserved", start.0, end.0);
        }
        Ok(())
    }

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
        RESERVE_MEM.load(Ordering::Relaxed)
    }

    fn pagetable_setup_start(&self, pt: &mut PagetableSetup) -> HvResult {
        pagetable::setup_start(pt)
    }

    fn pagetable_setup_done(&self, pt: &mut PagetableSetup) -> HvResult {
        pagetable::setup_done(pt)
    }

    fn set_pte(&self, at: &EntryRef, val: u64) -> HvResult {
        paravirt::native::write_entry(at, val);
        announce::update(nr::SET_PTE, pa(at.root), at.vaddr.0, val as u32)
    }

    fn set_pte_range(&self, first: &EntryRef, count: u32, pfn: Pfn, flags: PteFlags) -> HvResult {
        for i in 0..count {
            let at = first.add(i);
            let val = self.make_pte(pfn.add(i), flags);
            paravirt::native::write_entry(&at, val);
            announce::update(nr::SET_PTE, pa(at.root), at.vaddr.0, val as u32)?;
        }
        Ok(())
    }

    fn set_pmd(&self, at: &EntryRef, val: u64) -> HvResult {
        // 2-level: the pmd is the pgd entry; SET_PMD names its page and index.
        paravirt::native::write_entry(at, val);
        announce::update(nr::SET_PMD, pa(at.table), at.index, 0)
    }

    fn set_pgd(&self, at: &EntryRef, val: u64) -> HvResult {
        self.set_pmd(at, val)
    }

    fn flush_tlb_single(&self, va: VirtAddr) -> HvResult {
        // "Set it to zero: if it was not, it will fault back in."
        hypercall::queue(nr::SET_PTE, pa(pagetable::root()), va.0, 0)
    }

    fn flush_tlb_user(&self) -> HvResult {
        pagetable::flush(false);
        Ok(())
    }

    fn flush_tlb_kernel(&self) -> HvResult {
        pagetable::flush(true);
        Ok(())
    }

    fn read_cr3(&self) -> Pfn {
        pagetable::root()
    }

    fn read_cr2(&self) -> u32 {
        LGUEST_DATA.read(field!(cr2))
    }

    fn write_cr3(&self, root: Pfn) -> HvResult {
        pagetable::switch_to(root);
        Ok(())
    }

    fn enter_lazy_mmu(&self) {
        hypercall::enter_lazy();
    }

    fn leave_lazy_mmu(&self) -> HvResult {
        hypercall::leave_lazy();
        Ok(())
    }

    unsafe fn load_idt(&self, gates: &'static [u64]) -> HvResult {
        // One gate per call, all 32 exception vectors in one batch. The host
        // ignores the vectors it keeps (NMI, #DF, 15, the hypercall trap).
        hypercall::enter_lazy();
        let mut result = Ok(());
        for (v, g) in gates.iter().enumerate().take(32) {
            result = hypercall::queue(nr::LOAD_IDT_ENTRY, v as u32, *g as u32, (*g >> 32) as u32);
            if result.is_err() {
                break;
            }
        }
        hypercall::leave_lazy();
        result
    }

    fn console_write(&self, bytes: &[u8]) {
        console::write(bytes)
    }

    fn shutdown(&self, _status: ExitStatus) -> ! {
        // The host decides QEMU's exit status from the result line the
        // kernel printed; CRASH("Power down") is lguest's power-off.
        let msg = (abi::POWER_DOWN.as_ptr() as usize as u32).wrapping_sub(PAGE_OFFSET);
        loop {
            hypercall::call(nr::CRASH, msg, 0, 0);
        }
    }

    fn counters(&self) -> Counters {
        hypercall::counters()
    }
}

#[distributed_slice(HYPERVISORS)]
static LGUEST: &'static dyn Hypervisor = &Lguest;
