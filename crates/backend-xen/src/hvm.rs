//! Xen HVM/PVH: the same hypervisor, a different contract.
//!
//! A PVH guest runs in ring 0 of a hardware-virtualized container with
//! nested paging: the MMU walks the guest's own pagetables, so pagetable
//! writes, CR3 and TLB flushes are native again. What stays Xen is
//! everything there is no PC hardware for: no firmware memory map (PVH
//! start_info version 0 has none: ask `XENMEM_memory_map`), no serial port
//! of our own (Xen owns COM1: use `console_io`), hypercalls through a page
//! Xen fills when its guest-physical address is written to the MSR that
//! CPUID leaf base+2 names (`vmcall`/`vmmcall` stubs instead of `int 0x82`).
//! This backend is therefore short: it overrides identity, detection,
//! init, console and shutdown, and inherits every pagetable hook.

use core::sync::atomic::{AtomicBool, Ordering};

use arch_i386::cpu;
use arch_i386::layout::PAGE_OFFSET;
use paravirt::irq::Entries;
use paravirt::memmap::{read_e820_table, MemoryMap};
use paravirt::phys::Bytes;
use paravirt::{
    BootInfo, Counters, Detected, DevicePage, ExitStatus, HvError, HvResult, Hypervisor, Irq, Line, Services,
    Time, Verdict,
};

use crate::abi::{self, nr};
use crate::abi::{AddToPhysmap, HvmParam, DOMID_SELF};
use crate::check;
use crate::console::Console;
use crate::evtchn::EventChannels;
use crate::hypercall::{self, HypercallPage};
use crate::shared_info::{self, SharedInfo};
use crate::time::XenTime;

pub struct XenHvm {
    pub(crate) hc: HypercallPage,
    console: Console,
    pub(crate) shared: SharedInfo,
    pub(crate) events: EventChannels,
    pub(crate) time: XenTime,
    page_ready: AtomicBool,
}

pub(crate) static XEN_HVM: XenHvm = XenHvm {
    hc: HypercallPage::new(),
    console: Console::new(),
    shared: SharedInfo::new(),
    events: EventChannels::new(),
    time: XenTime::new(),
    page_ready: AtomicBool::new(false),
};

pub const SIGNATURE: &[u8; 12] = b"XenVMMXenVMM";

/// The vector Xen injects for events (HVM_PARAM_CALLBACK_IRQ type 2):
/// high, above anything a PIC or our LAPIC use, as Linux's
/// HYPERVISOR_CALLBACK_VECTOR.
pub const CALLBACK_VECTOR: u8 = 0xF3;

/// XENMEM_memory_map.
const XENMEM_MEMORY_MAP: u32 = 9;
const E820_ENTRY: usize = 20;
const MAX_E820: usize = 64;

impl XenHvm {
    /// Installs the hypercall page once (also from the console, which may
    /// be needed before `init` to report a selection error).
    fn hypercall_page(&self) -> HvResult {
        if self.page_ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        let f = cpu::probe();
        let leaf =
            f.find_hypervisor(SIGNATURE).ok_or(HvError::local("xen-hvm: no XenVMMXenVMM CPUID leaf", &[]))?;
        if leaf.max_leaf < leaf.base + 2 {
            return Err(HvError::local(
                "xen-hvm: CPUID leaf base+2 (the hypercall MSR) is missing",
                &[leaf.base as u64],
            ));
        }
        let msr = cpu::cpuid(leaf.base + 2, 0).ebx;
        let pa = hypercall::page_address() - PAGE_OFFSET;
        // SAFETY: Xen defines this MSR (CPUID said so); writing a page's
        // guest-physical address makes Xen fill that page with stubs, and
        // the page is the kernel's own, reserved for it.
        unsafe { arch_i386::cr::wrmsr(msr, pa as u64) };
        if !hypercall::page_filled() {
            return Err(HvError::local(
                "xen-hvm: Xen did not fill the hypercall page (MSR, address)",
                &[msr as u64, pa as u64],
            ));
        }
        self.page_ready.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn hvm_param(&self, op: u32, index: u32, value: u64) -> Result<u64, HvError> {
        let mut p = HvmParam { domid: DOMID_SELF as u16, pad: 0, index, value };
        let rc = self.hc.call(nr::HVM_OP, [op, &raw mut p as u32, 0, 0, 0]);
        if rc < 0 {
            let what = if op == abi::HVMOP_SET_PARAM {
                "hvm_op(HVMOP_set_param)"
            } else {
                "hvm_op(HVMOP_get_param)"
            };
            return Err(HvError::refused(what, &[index as u64, value], rc as i64));
        }
        Ok(p.value)
    }

    /// The memory map Xen keeps for us.
    fn memory_map(&self) -> Result<MemoryMap, HvError> {
        #[repr(C)]
        struct XenMemoryMap {
            nr_entries: u32,
            buffer: u32,
        }
        let mut buf = [0u8; E820_ENTRY * MAX_E820];
        let mut arg = XenMemoryMap { nr_entries: MAX_E820 as u32, buffer: buf.as_mut_ptr() as u32 };
        let rc = self.hc.call(nr::MEMORY_OP, [XENMEM_MEMORY_MAP, &raw mut arg as u32, 0, 0, 0]);
        check("memory_op(XENMEM_memory_map)", rc, &[MAX_E820 as u64])?;
        let map = read_e820_table(
            &Bytes(&buf),
            0,
            (arg.nr_entries as u64, "XENMEM_memory_map nr_entries"),
            E820_ENTRY as u64,
            "XENMEM_memory_map",
        )?;
        Ok(map)
    }
}

impl Hypervisor for XenHvm {
    fn name(&self) -> &'static str {
        "xen-hvm"
    }

    fn detect(&self, boot: &BootInfo) -> Verdict {
        if boot.cpl != 0 {
            return Err("running in ring 1: a PV guest, not HVM/PVH");
        }
        if boot.cpu.find_hypervisor(SIGNATURE).is_none() {
            return Err("no XenVMMXenVMM signature in CPUID leaves 0x40000000-0x4000ff00");
        }
        Ok(Detected { priority: 50, why: "CPUID hypervisor signature XenVMMXenVMM in ring 0 (HVM/PVH)" })
    }

    fn init(&self, boot: &mut BootInfo) -> HvResult {
        self.hypercall_page()?;
        // PVH start_info version 0 carries no memory map; Xen has one.
        if boot.memory.is_empty() || boot.info_error.is_some() {
            let map = self.memory_map()?;
            boot.info_error = map.validate().err();
            boot.memory = map;
            log::info!("xen-hvm: memory map from XENMEM_memory_map ({} entries)", map.regions().len());
        }
        Ok(())
    }

    /// A domU's console ring is a guest frame the toolstack chose, near
    /// 4 GiB (above the direct map): mapped through the kernel's fixmap
    /// once there is one. Until then output waits in the console's buffer
    /// (a domU may not use console_io).
    fn late_init(&self, services: &dyn Services) -> HvResult {
        let Ok(pfn) = self.hvm_param(abi::HVMOP_GET_PARAM, abi::HVM_PARAM_CONSOLE_PFN, 0) else {
            return Ok(()); // dom0: console_io
        };
        if pfn == 0 {
            return Ok(());
        }
        let port = self.hvm_param(abi::HVMOP_GET_PARAM, abi::HVM_PARAM_CONSOLE_EVTCHN, 0)?;
        let va = services.map_device(DevicePage::Console, pfn << 12)?;
        // SAFETY: the fixmap slot for the console maps the ring's frame
        // for the rest of the run.
        unsafe { self.console.use_ring(va, port as u32) };
        log::info!("xen-hvm: console ring at pfn {:#x}, event channel {}", pfn, port);
        Ok(())
    }

    fn console_write(&self, bytes: &[u8]) {
        if self.hypercall_page().is_ok() {
            self.console.write(&self.hc, bytes);
        }
    }

    fn shutdown(&self, status: ExitStatus) -> ! {
        if self.hypercall_page().is_err() {
            // No hypercalls: the exit device alone.
            // SAFETY: under QEMU isa-debug-exit answers at 0xF4; elsewhere
            // nothing does and the write is ignored.
            unsafe { arch_i386::io::debug_exit(status.debug_exit_code()) };
            arch_i386::io::halt_forever()
        }
        crate::hypercall_exit(&self.hc, &self.console, status, true)
    }

    fn counters(&self) -> Counters {
        self.hc.counters()
    }

    fn irq(&self) -> &dyn Irq {
        self
    }

    fn time(&self) -> &dyn Time {
        self
    }
}

/// A PVH guest keeps the processor's interrupt flag (it runs in ring 0 of
/// its container): `cli`, `sti` and `hlt` are native, and Xen honours IF
/// when injecting. Events come as one IDT vector Xen injects while
/// `evtchn_upcall_pending` is set, with no local APIC in the way (no EOI).
/// Chosen over Xen's emulated local APIC timer: every APIC timer write and
/// every EOI would trap to Xen's emulation, where the event-channel timer
/// costs one hypercall per arm and nothing per interrupt.
impl Irq for XenHvm {
    fn init(&self, _entries: &Entries, _services: &dyn Services) -> HvResult<&'static str> {
        let frame = shared_info::FRAME.addr();
        let gpfn = ((frame - arch_i386::layout::PAGE_OFFSET as usize) >> 12) as u32;
        let mut xatp = AddToPhysmap {
            domid: DOMID_SELF as u16,
            size: 0,
            space: abi::XENMAPSPACE_SHARED_INFO,
            idx: 0,
            gpfn,
        };
        let rc = self.hc.call(nr::MEMORY_OP, [abi::XENMEM_ADD_TO_PHYSMAP, &raw mut xatp as u32, 0, 0, 0]);
        check("memory_op(XENMEM_add_to_physmap, shared_info)", rc, &[gpfn as u64])?;
        // SAFETY: Xen put its shared info page at the image frame behind
        // `frame`, which the direct map maps for good.
        unsafe { self.shared.set(frame) };
        let page = self.shared.page().ok_or(HvError::local("xen-hvm: shared_info not mapped", &[]))?;
        page.mask_all();
        self.hvm_param(
            abi::HVMOP_SET_PARAM,
            abi::HVM_PARAM_CALLBACK_IRQ,
            abi::HVM_CALLBACK_VECTOR | CALLBACK_VECTOR as u64,
        )?;
        Ok("Xen event channels (2-level), injected at vector 0xf3 (HVM_PARAM_CALLBACK_IRQ)")
    }

    fn dispatch(&self, vector: u32, handle: &mut dyn FnMut(Line)) {
        match self.shared.page() {
            Some(page) if vector == CALLBACK_VECTOR as u32 => self.events.scan(page, handle),
            _ => handle(Line::Other(vector)),
        }
    }
}
