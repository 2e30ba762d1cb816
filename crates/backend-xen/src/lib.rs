//! Xen PV: the kernel as a 32-bit PAE paravirtualized guest (dom0 here).
//!
//! A PV guest runs in ring 1 on pagetables Xen validates. What differs
//! from native, and therefore all this backend overrides:
//! - platform: Xen's ELF notes and PV entry (`entry.rs`), detection by the
//!   start_info magic, `init` (the hypercall page, the frame tables, the
//!   memory map); the console is `console_io` for dom0 and the ring
//!   start_info names for any other domain (`console.rs`); the exit is
//!   isa-debug-exit, reached after asking Xen for I/O privilege
//!   (`PHYSDEVOP_set_iopl`, which only dom0 gets), then `SCHEDOP_shutdown`
//!   with the reason `xl` reports (poweroff, or crash for a failed run);
//! - paging policy: PAE only, no large or global pages, pagetable pages
//!   read-only, Xen's hole at the top of the address space;
//! - MMU: every entry holds a machine frame (`p2m.rs`); tables Xen has
//!   pinned change only through `mmu_update`, batched in lazy-MMU mode
//!   (`batch.rs`); CR3 switches, pins and TLB flushes are `mmuext_op`s
//!   (`pagetable.rs`). All of it goes through one seam, the hypercall
//!   transport (`transport.rs`), which host tests replace with a fake Xen;
//! - CPU: the IDT goes to `set_trap_table`; interrupt returns are the
//!   `iret` hypercall;
//! - interrupts: event channels, a virtual interrupt flag in shared_info,
//!   halting by `SCHEDOP_block` (`irq.rs`, `evtchn.rs`, `shared_info.rs`);
//! - time: pvclock and Xen's single-shot timer (`time.rs`, `pvclock.rs`).
//!
//! `xen-hvm` (`hvm.rs`), the same hypervisor's PVH guest, lives here too.
//!
//! Every hypercall's result is checked. A refusal is an `HvError` naming
//! the operation (the failing entry of a batch), its arguments and Xen's
//! error code; a problem the backend finds itself says so, with no errno.

#![no_std]

pub mod abi;
pub mod batch;
pub mod console;
mod entry;
pub mod evtchn;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod hvm;
pub mod hypercall;
mod irq;
pub mod p2m;
pub mod pagetable;
pub mod pvclock;
pub mod shared_info;
pub mod strategy;
mod time;
pub mod transport;

use arch_i386::cpu::CpuFeatures;
use arch_i386::layout::PAGE_OFFSET;
use arch_i386::paging::present;
use arch_i386::{PagingMode, Pfn, VirtAddr};
use linkme::distributed_slice;
use once_cell::race::OnceNonZeroUsize;
use paravirt::memmap::{MemoryMap, Region, RegionKind};
use paravirt::xen_start_info::StartInfo;
use paravirt::{
    BootInfo, BootProtocol, Counters, Cpu, Detected, ExitStatus, HvError, HvResult, Hypervisor, Mmu,
    PagingPolicy, Verdict, HYPERVISORS,
};

use abi::{nr, MachphysMapping, TrapInfo};
use console::Console;
use core::sync::atomic::{AtomicU32, Ordering};
use evtchn::EventChannels;
use hypercall::HypercallPage;
use p2m::P2m;
use pagetable::{Machine, XenMmu};
use shared_info::SharedInfo;
use time::XenTime;

pub struct XenPv {
    mmu: XenMmu<HypercallPage>,
    console: Console,
    /// Machine address of the shared info page (start_info), mapped when
    /// interrupts are set up.
    shared_info_ma: AtomicU32,
    shared: SharedInfo,
    events: EventChannels,
    time: XenTime,
    /// Where Xen's part of our address space starts (never 0: it is at the
    /// top), learned at init.
    hv_start: OnceNonZeroUsize,
}

static XEN_PV: XenPv = XenPv {
    mmu: XenMmu::new(HypercallPage::new()),
    console: Console::new(),
    shared_info_ma: AtomicU32::new(0),
    shared: SharedInfo::new(),
    events: EventChannels::new(),
    time: XenTime::new(),
    hv_start: OnceNonZeroUsize::new(),
};

impl XenPv {
    fn hc(&self) -> &HypercallPage {
        &self.mmu.hc
    }
}

fn check(op: &'static str, rc: i32, args: &[u64]) -> HvResult {
    if rc < 0 {
        Err(HvError::refused(op, args, rc as i64))
    } else {
        Ok(())
    }
}

/// How far Xen's initial mapping reaches: it maps pfn n at PAGE_OFFSET +
/// n * 4K from 0 up to a 4 MiB boundary past the boot stack. Walk its L2
/// for slot 3 and count present entries.
fn initial_mapping_end(si: &StartInfo, p2m: &P2m) -> Pfn {
    let read = |pfn: Pfn, i: u32| -> u64 {
        // SAFETY: Xen maps its boot pagetable frames (read-only) inside the
        // initial mapping, at PAGE_OFFSET + pfn * 4K, and only frames the
        // p2m says are ours are followed; i < 512.
        unsafe { ((PAGE_OFFSET + (pfn.0 << 12)) as *const u64).add(i as usize).read_volatile() }
    };
    let frame = |raw: u64| p2m.pfn(((raw & PagingMode::Pae.addr_mask()) >> 12) as u32);
    let l3 = Pfn((si.pt_base - PAGE_OFFSET) >> 12);
    let Some(l2) = frame(read(l3, 3)) else {
        return Pfn(0);
    };
    let mut end = 0;
    for i in 0..512 {
        let Some(l1) = frame(read(l2, i)).filter(|_| present(read(l2, i))) else {
            break;
        };
        for j in 0..512 {
            if !present(read(l1, j)) {
                return Pfn(end);
            }
            end += 1;
        }
    }
    Pfn(end)
}

impl Hypervisor for XenPv {
    fn name(&self) -> &'static str {
        "xen"
    }

    fn detect(&self, boot: &BootInfo) -> Verdict {
        match boot.protocol {
            BootProtocol::XenPv { info: Ok(_), .. } => {
                Ok(Detected { priority: 100, why: "start_info magic xen-3.0-x86_32p" })
            }
            BootProtocol::XenPv { .. } => Err("start_info magic is not xen-3.0-x86_32p"),
            _ => Err("not entered through Xen's PV entry (no start_info)"),
        }
    }

    fn init(&self, boot: &mut BootInfo) -> HvResult {
        if !hypercall::page_filled() {
            return Err(HvError::local("xen: Xen did not fill the hypercall page", &[]));
        }
        let BootProtocol::XenPv { start_info: va, info: Ok(si) } = boot.protocol else {
            return Err(HvError::local("xen: not a PV boot with a valid start_info", &[]));
        };
        // Where Xen's part of the address space starts, and its m2p table.
        let mut mp = MachphysMapping::default();
        let rc = self.hc().call(nr::MEMORY_OP, [abi::XENMEM_MACHPHYS_MAPPING, &raw mut mp as u32, 0, 0, 0]);
        check("memory_op(XENMEM_machphys_mapping)", rc, &[])?;
        let start = core::num::NonZeroUsize::new(mp.v_start as usize)
            .ok_or(HvError::local("xen: XENMEM_machphys_mapping says the hypervisor starts at 0", &[]))?;
        let _ = self.hv_start.set(start);
        self.shared_info_ma.store(si.shared_info, Ordering::Relaxed);
        // The m2p table has one u32 per machine frame up to v_end.
        let m2p_entries = mp.v_end.wrapping_sub(mp.v_start) / 4;
        let max_mfn = mp.max_mfn.min(m2p_entries.saturating_sub(1));
        // SAFETY: Xen maps the p2m list (nr_pages u32s) in our initial
        // mapping and the read-only m2p (max_mfn + 1 u32s) at v_start; both
        // stay mapped for the domain's life.
        let p2m =
            unsafe { P2m::new(si.mfn_list as *const u32, si.nr_pages, mp.v_start as *const u32, max_mfn) };
        let hv_l2_slot = (mp.v_start - PAGE_OFFSET) >> 21;
        self.mmu.init(Machine { p2m, hv_l2_slot }, Pfn((si.pt_base - PAGE_OFFSET) >> 12));

        match boot.cmdline.get_u32("xen_fail_hypercall") {
            Ok(n) => self.hc().fail_at(n.unwrap_or(0)),
            Err(_) => return Err(HvError::local("xen: xen_fail_hypercall= takes a number", &[])),
        }
        // How the pagetable build talks to Xen: ours, or an anchor's, for
        // `cargo xtask bench` to compare (strategy.rs).
        match boot.cmdline.get_choice("xen_pt_strategy", strategy::Strategy::NAMES, "pvops, minios or linux")
        {
            Ok(name) => self.mmu.set_strategy(
                name.and_then(strategy::Strategy::from_name).unwrap_or(strategy::Strategy::Pvops),
            ),
            Err(_) => return Err(HvError::local("xen: xen_pt_strategy= takes pvops, minios or linux", &[])),
        }
        // A PV domain's memory is simply pfn 0..nr_pages (XENMEM_memory_map
        // answers -ENOSYS for a PV dom0).
        let mut map = MemoryMap::default();
        map.push(Region { start: 0, len: (si.nr_pages as u64) << 12, kind: RegionKind::Ram })?;
        boot.memory = map;
        boot.info_error = None;
        boot.early_mapped_end = initial_mapping_end(&si, &p2m);
        // Keep what Xen placed after the image: initrd, p2m list,
        // start_info, boot pagetable, boot stack.
        let pfn = |va: u32| Pfn((va - PAGE_OFFSET) >> 12);
        let mut first = pfn(si.mfn_list).min(pfn(va.0));
        if si.mod_len != 0 {
            first = first.min(pfn(si.mod_start));
        }
        let last = pfn(si.pt_base).add(si.nr_pt_frames + 1).max(pfn(va.0).add(1));
        boot.reserve(first, last)?;
        log::info!("xen: entered at {:#x} with start_info at {:#x}", entry::entry_point(), va.0);
        log::info!(
            "xen: dom0={} nr_pages={} ({} MiB), boot pagetable {} frames at {:#x}, initial mapping to pfn {:#x}, hypervisor area from {:#x}",
            si.is_dom0() as u8,
            si.nr_pages,
            si.nr_pages >> 8,
            si.nr_pt_frames,
            si.pt_base,
            boot.early_mapped_end.0,
            mp.v_start
        );
        Ok(())
    }

    fn console_init(&self, boot: &BootInfo) {
        let BootProtocol::XenPv { info: Ok(si), .. } = boot.protocol else { return };
        if si.is_dom0() || si.console_mfn == 0 || !hypercall::page_filled() {
            return; // dom0 writes through console_io
        }
        // The ring is one of the pages the domain builder allocated after
        // the image, inside Xen's initial mapping (and later our direct
        // map): find its pfn through the m2p.
        let mut mp = MachphysMapping::default();
        if self.hc().call(nr::MEMORY_OP, [abi::XENMEM_MACHPHYS_MAPPING, &raw mut mp as u32, 0, 0, 0]) < 0 {
            return;
        }
        let max_mfn = mp.max_mfn.min((mp.v_end.wrapping_sub(mp.v_start) / 4).saturating_sub(1));
        // SAFETY: as in `init`: the p2m list and the m2p table stay mapped.
        let p2m =
            unsafe { P2m::new(si.mfn_list as *const u32, si.nr_pages, mp.v_start as *const u32, max_mfn) };
        let Some(pfn) = p2m.pfn(si.console_mfn) else { return };
        if pfn >= initial_mapping_end(&si, &p2m) {
            return;
        }
        // SAFETY: the page is the console ring start_info names, ours (the
        // p2m agrees) and inside the initial mapping, where the direct map
        // keeps it for the domain's life.
        unsafe { self.console.use_ring((PAGE_OFFSET + (pfn.0 << 12)) as usize, si.console_evtchn) };
    }

    fn console_write(&self, bytes: &[u8]) {
        self.console.write(self.hc(), bytes);
    }

    fn shutdown(&self, status: ExitStatus) -> ! {
        self.console.drain();
        // Port I/O for the exit device: a ring-1 kernel needs IOPL 1. Asked
        // for here, not in `init`: a run can end before `init` (a refused
        // `hypervisor=`), and an unprivileged domain is refused it.
        let iopl: u32 = 1;
        let rc = self.hc().call(nr::PHYSDEV_OP, [abi::PHYSDEVOP_SET_IOPL, &raw const iopl as u32, 0, 0, 0]);
        hypercall_exit(self.hc(), &self.console, status, rc >= 0)
    }

    fn counters(&self) -> Counters {
        self.hc().counters()
    }

    fn paging(&self) -> &dyn PagingPolicy {
        self
    }

    fn mmu(&self) -> &dyn Mmu {
        &self.mmu
    }

    fn cpu(&self) -> &dyn Cpu {
        self
    }

    fn irq(&self) -> &dyn paravirt::Irq {
        self
    }

    fn time(&self) -> &dyn paravirt::Time {
        self
    }
}

impl PagingPolicy for XenPv {
    fn paging_modes(&self, _: &CpuFeatures) -> &'static [PagingMode] {
        // A 64-bit Xen runs 32-bit PV guests in PAE mode only.
        &[PagingMode::Pae]
    }

    fn large_pages(&self, _: &CpuFeatures) -> bool {
        false // no superpages in PV
    }

    fn global_pages(&self, _: &CpuFeatures) -> bool {
        false
    }

    fn reserved_top(&self) -> u32 {
        let start = self.hv_start.get().map(|s| s.get() as u32).unwrap_or(abi::DEFAULT_HV_START);
        0u32.wrapping_sub(start)
    }

    fn pagetable_pages_readonly(&self) -> bool {
        true
    }

    fn shared_kernel_pmd(&self) -> bool {
        false
    }
}

impl Cpu for XenPv {
    unsafe fn load_idt(&self, gates: &'static [u64]) -> HvResult {
        // The PV IDT: one trap_info per exception vector, zero-terminated.
        // The exceptions and the system-call vector (the only gate user
        // mode may `int` to: DPL 3). Interrupt gates mask events on entry
        // (flag 4), as a native interrupt gate clears IF.
        let mut table = [TrapInfo::default(); 34];
        let vectors = (0..32u8).chain(core::iter::once(user_abi::SYSCALL_VECTOR));
        for (slot, v) in vectors.enumerate() {
            let g = gates[v as usize];
            let dpl = ((g >> 45) & 3) as u8;
            let interrupt_gate = (g >> 40) & 0xF == 0xE;
            table[slot] = TrapInfo {
                vector: v,
                flags: dpl | if interrupt_gate { abi::TI_MASK_EVENTS } else { 0 },
                cs: abi::FLAT_RING1_CS,
                address: arch_i386::desc::gate_offset(g),
            };
        }
        let rc = self.hc().call(nr::SET_TRAP_TABLE, [table.as_ptr() as u32, 0, 0, 0, 0]);
        check("set_trap_table", rc, &[table.as_ptr() as u64])
    }

    fn iret(&self) -> u32 {
        hypercall::iret_entry()
    }

    fn selectors(&self) -> arch_i386::desc::Selectors {
        arch_i386::desc::Selectors {
            kernel_cs: abi::FLAT_RING1_CS,
            kernel_ds: abi::FLAT_RING1_DS,
            user_cs: abi::FLAT_RING3_CS,
            user_ds: abi::FLAT_RING3_DS,
        }
    }

    /// `stack_switch`: the ring-1 stack Xen moves to when user mode traps.
    unsafe fn load_sp0(&self, _tss: *mut arch_i386::desc::Tss, sp0: u32) -> HvResult {
        let rc = self.hc().call(nr::STACK_SWITCH, [abi::FLAT_RING1_DS as u32, sp0, 0, 0, 0]);
        check("stack_switch", rc, &[sp0 as u64])
    }

    fn read_cr2(&self) -> VirtAddr {
        // Xen writes the fault address into the vcpu_info's arch part; a
        // ring-1 `mov cr2` is emulated and gives the same value.
        arch_i386::cr::Cr2::read()
    }
}

/// Ends the run: QEMU's isa-debug-exit, if `ports` (PV got IOPL 1, PVH runs
/// in ring 0), stops the machine with our status; without that device,
/// power off through Xen. If even that returns, say so on the console and
/// yield forever.
pub(crate) fn hypercall_exit(hc: &HypercallPage, console: &Console, status: ExitStatus, ports: bool) -> ! {
    use crate::abi::{SCHEDOP_SHUTDOWN, SCHEDOP_YIELD, SHUTDOWN_CRASH, SHUTDOWN_POWEROFF};
    if ports {
        // SAFETY: under QEMU isa-debug-exit answers at 0xF4; on a machine
        // without it nothing does, and the write is ignored.
        unsafe { arch_i386::io::debug_exit(status.debug_exit_code()) };
    }
    let reason: u32 = match status {
        ExitStatus::Success | ExitStatus::Skip => SHUTDOWN_POWEROFF,
        ExitStatus::Error | ExitStatus::Failure => SHUTDOWN_CRASH,
    };
    let rc = hc.call(nr::SCHED_OP, [SCHEDOP_SHUTDOWN, &raw const reason as u32, 0, 0, 0]);
    let mut line = [0u8; 64];
    let msg = b"xen: SCHEDOP_shutdown returned ";
    line[..msg.len()].copy_from_slice(msg);
    let code = (-rc).clamp(0, 99) as u8;
    line[msg.len()] = b'-';
    line[msg.len() + 1] = b'0' + code / 10;
    line[msg.len() + 2] = b'0' + code % 10;
    line[msg.len() + 3] = b'\n';
    console.write(hc, &line[..msg.len() + 4]);
    loop {
        hc.call(nr::SCHED_OP, [SCHEDOP_YIELD, 0, 0, 0, 0]);
    }
}

#[distributed_slice(HYPERVISORS)]
static XEN: &'static dyn Hypervisor = &XEN_PV;

#[distributed_slice(HYPERVISORS)]
static XEN_HVM: &'static dyn Hypervisor = &hvm::XEN_HVM;
