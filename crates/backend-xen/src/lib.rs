//! Xen PV: the kernel as a 32-bit PAE paravirtualized guest (dom0 here).
//!
//! A PV guest runs in ring 1 on pagetables Xen validates. What differs
//! from native, and therefore all this backend overrides:
//! - entry: Xen's ELF notes and PV entry (`entry.rs`), start_info
//!   (`start_info.rs`), detection by its magic;
//! - every pagetable entry holds a machine frame (`p2m.rs`), pagetable
//!   pages are read-only and live ones change only through `mmu_update`,
//!   batched in lazy-MMU mode (`batch.rs`, `pagetable.rs`);
//! - CR3 switches, TLB flushes and the IDT go through hypercalls;
//! - the console is `console_io`; the exit is isa-debug-exit, reached
//!   after asking Xen for I/O privilege (`PHYSDEVOP_set_iopl`).
//!
//! Every hypercall's result is checked and a failure is an `HvError`
//! naming the operation, its arguments and Xen's error code.

#![no_std]

pub mod abi;
pub mod batch;
mod entry;
pub mod hvm;
pub mod hypercall;
pub mod p2m;
pub mod pagetable;
pub mod start_info;

use core::sync::atomic::{AtomicU32, Ordering};

use arch_i386::cpu::CpuFeatures;
use arch_i386::layout::PAGE_OFFSET;
use arch_i386::paging::present;
use arch_i386::{PagingMode, Pfn, PteFlags, VirtAddr};
use linkme::distributed_slice;
use paravirt::memmap::{MemoryMap, Region, RegionKind};
use paravirt::{
    BootInfo, BootProtocol, Counters, Detected, EntryRef, ExitStatus, HvError, HvResult, Hypervisor,
    PagetableSetup, Verdict, HYPERVISORS,
};
use spin::Once;

use abi::{mmuext, nr, MachphysMapping, MmuextOp, TrapInfo};
use hypercall::check;
use start_info::StartInfo;

pub struct XenPv;

static START_INFO: Once<StartInfo> = Once::new();
/// Start of the hypervisor's part of our address space.
static HV_START: AtomicU32 = AtomicU32::new(abi::DEFAULT_HV_START);

impl XenPv {
    fn machine_addr(at: &EntryRef) -> u64 {
        ((p2m::mfn(at.table) as u64) << 12) | at.offset() as u64
    }

    fn write(at: &EntryRef, val: u64) -> HvResult {
        if pagetable::is_pending(at.table) {
            paravirt::native::write_entry(at, val);
            Ok(())
        } else {
            batch::mmu_update(Self::machine_addr(at), val)
        }
    }
}

/// The start_info page, copied (Xen maps it at `va`).
fn read_start_info(va: VirtAddr) -> Option<StartInfo> {
    let mut b = [0u8; start_info::SIZE];
    // SAFETY: Xen enters with esi = a mapped start_info page.
    unsafe { core::ptr::copy_nonoverlapping(va.0 as *const u8, b.as_mut_ptr(), b.len()) };
    StartInfo::parse(&b)
}

/// How far Xen's initial mapping reaches: it maps pfn n at PAGE_OFFSET +
/// n * 4K from 0 up to a 4 MiB boundary past the boot stack. Walk its L2
/// for slot 3 and count present entries.
fn initial_mapping_end(si: &StartInfo) -> Pfn {
    let read = |pfn: Pfn, i: u32| -> u64 {
        // SAFETY: Xen maps its boot pagetable frames (read-only) inside the
        // initial mapping, at PAGE_OFFSET + pfn * 4K.
        unsafe { ((PAGE_OFFSET + (pfn.0 << 12)) as *const u64).add(i as usize).read_volatile() }
    };
    let frame = |raw: u64| p2m::pfn(((raw & PagingMode::Pae.addr_mask()) >> 12) as u32);
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
            BootProtocol::XenPv { magic, .. } if magic.starts_with(start_info::MAGIC) => {
                Ok(Detected { priority: 100, why: "start_info magic xen-3.0-x86_32p" })
            }
            BootProtocol::XenPv { .. } => Err("start_info magic is not xen-3.0-x86_32p"),
            _ => Err("not entered through Xen's PV entry (no start_info)"),
        }
    }

    fn init(&self, boot: &mut BootInfo) -> HvResult {
        if !hypercall::page_filled() {
            return Err(HvError::new("xen: the hypercall page was not filled", &[], -38));
        }
        let BootProtocol::XenPv { start_info: va, .. } = boot.protocol else {
            return Err(HvError::new("xen: not a PV boot", &[], -22));
        };
        let si = *START_INFO.call_once(|| read_start_info(va).expect("magic checked by detect"));
        // Where Xen's part of the address space starts, and its m2p table.
        let mut mp = MachphysMapping::default();
        let rc = hypercall::call(nr::MEMORY_OP, [abi::XENMEM_MACHPHYS_MAPPING, &raw mut mp as u32, 0, 0, 0]);
        check("memory_op(XENMEM_machphys_mapping)", rc, &[])?;
        HV_START.store(mp.v_start, Ordering::Relaxed);
        pagetable::set_hv_start(mp.v_start);
        // The m2p table has one u32 per machine frame up to v_end.
        let m2p_entries = (mp.v_end.wrapping_sub(mp.v_start)) / 4;
        p2m::init(si.mfn_list, si.nr_pages, mp.v_start, mp.max_mfn.min(m2p_entries.saturating_sub(1)));

        pagetable::set_root(Pfn((si.pt_base - PAGE_OFFSET) >> 12));

        boot.cmdline = si.cmdline;
        if let Some(n) = boot.cmdline.get("xen_fail_hypercall") {
            hypercall::fail_at(n.parse().unwrap_or(0));
        }
        // A PV domain's memory is simply pfn 0..nr_pages (XENMEM_memory_map
        // answers -ENOSYS for a PV dom0).
        let mut map = MemoryMap::default();
        map.push(Region { start: 0, len: (si.nr_pages as u64) << 12, kind: RegionKind::Ram })
            .map_err(|_| HvError::new("xen: memory map", &[], -12))?;
        boot.memory = map;
        boot.memory_error = None;
        boot.early_mapped_end = initial_mapping_end(&si);
        // Keep what Xen placed after the image: initrd, p2m list,
        // start_info, boot pagetable, boot stack.
        let pfn = |va: u32| Pfn((va - PAGE_OFFSET) >> 12);
        let mut first = pfn(si.mfn_list).min(pfn(va.0));
        if si.mod_len != 0 {
            first = first.min(pfn(si.mod_start));
        }
        let last = pfn(si.pt_base).add(si.nr_pt_frames + 1).max(pfn(va.0).add(1));
        boot.reserve(first, last);
        log::info!("xen: entered at {:#x} with start_info at {:#x}", entry::entry_point(), va.0);
        log::info!(
            "xen: dom0={} nr_pages={}
 ({} MiB), boot pagetable {} frames at {:#x}, initial mapping to pfn {:#x}, hypervisor area from {:#x}",
            si.is_dom0() as u8,
            si.nr_pages,
            si.nr_pages >> 8,
            si.nr_pt_frames,
            si.pt_base,
            boot.early_mapped_end.0,
            mp.v_start
        );
        // Port I/O for the exit device: a ring-1 kernel needs IOPL 1.
        let iopl: u32 = 1;
        let rc = hypercall::call(nr::PHYSDEV_OP, [abi::PHYSDEVOP_SET_IOPL, &raw const iopl as u32, 0, 0, 0]);
        check("physdev_op(PHYSDEVOP_set_iopl, 1)", rc, &[1])
    }

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
        0u32.wrapping_sub(HV_START.load(Ordering::Relaxed))
    }

    fn pagetable_pages_readonly(&self) -> bool {
        true
    }

    fn pagetable_setup_start(&self, pt: &mut PagetableSetup) -> HvResult {
        pagetable::setup_start(pt)
    }

    fn pagetable_setup_done(&self, pt: &mut PagetableSetup) -> HvResult {
        pagetable::setup_done(pt)
    }

    fn alloc_pt(&self, pfn: Pfn) -> HvResult {
        pagetable::new_table(pfn)
    }

    fn alloc_pd(&self, pfn: Pfn) -> HvResult {
        pagetable::new_table(pfn)
    }

    fn make_pte(&self, pfn: Pfn, flags: PteFlags) -> u64 {
        pagetable::make(pfn, flags)
    }

    fn pte_pfn(&self, mode: PagingMode, raw: u64) -> Pfn {
        // Not ours (Xen's, or nothing): a pfn no check will accept.
        p2m::pfn(((raw & mode.addr_mask()) >> 12) as u32).unwrap_or(Pfn(u32::MAX))
    }

    fn set_pte(&self, at: &EntryRef, val: u64) -> HvResult {
        Self::write(at, val)
    }

    fn set_pte_range(&self, first: &EntryRef, count: u32, pfn: Pfn, flags: PteFlags) -> HvResult {
        let pending = pagetable::is_pending(first.table);
        for i in 0..count {
            let at = first.add(i);
            let val = pagetable::make(pfn.add(i), flags);
            if pending {
                paravirt::native::write_entry(&at, val);
            } else {
                batch::mmu_update(Self::machine_addr(&at), val)?;
            }
        }
        Ok(())
    }

    fn set_pmd(&self, at: &EntryRef, val: u64) -> HvResult {
        Self::write(at, val)
    }

    fn set_pgd(&self, at: &EntryRef, val: u64) -> HvResult {
        Self::write(at, val)
    }

    fn flush_tlb_single(&self, va: VirtAddr) -> HvResult {
        batch::mmuext(&mut [MmuextOp { cmd: mmuext::INVLPG_LOCAL, arg1: va.0, arg2: 0 }])
    }

    fn flush_tlb_user(&self) -> HvResult {
        batch::mmuext(&mut [MmuextOp { cmd: mmuext::TLB_FLUSH_LOCAL, arg1: 0, arg2: 0 }])
    }

    fn flush_tlb_kernel(&self) -> HvResult {
        self.flush_tlb_user()
    }

    fn read_cr3(&self) -> Pfn {
        pagetable::root()
    }

    fn write_cr3(&self, root: Pfn) -> HvResult {
        batch::mmuext(&mut [MmuextOp { cmd: mmuext::NEW_BASEPTR, arg1: p2m::mfn(root), arg2: 0 }])?;
        pagetable::set_root(root);
        Ok(())
    }

    fn enter_lazy_mmu(&self) {
        batch::enter_lazy();
    }

    fn leave_lazy_mmu(&self) -> HvResult {
        batch::leave_lazy()
    }

    unsafe fn load_idt(&self, gates: &'static [u64]) -> HvResult {
        // The PV IDT: one trap_info per exception vector, zero-terminated.
        let mut table = [TrapInfo::default(); 33];
        for (v, g) in gates.iter().take(32).enumerate() {
            table[v] = TrapInfo {
                vector: v as u8,
                flags: 0,
                cs: abi::FLAT_RING1_CS,
                address: arch_i386::desc::gate_offset(*g),
            };
        }
        let rc = hypercall::call(nr::SET_TRAP_TABLE, [table.as_ptr() as u32, 0, 0, 0, 0]);
        check("set_trap_table", rc, &[table.as_ptr() as u64])
    }

    fn console_write(&self, bytes: &[u8]) {
        hypercall::console_write(bytes);
    }

    fn shutdown(&self, status: ExitStatus) -> ! {
        hypercall::exit(status.debug_exit_code())
    }

    fn counters(&self) -> Counters {
        hypercall::counters()
    }
}

#[distributed_slice(HYPERVISORS)]
static XEN: &'static dyn Hypervisor = &XenPv;

#[distributed_slice(HYPERVISORS)]
static XEN_HVM: &'static dyn Hypervisor = &hvm::XenHvm;
