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
use paravirt::memmap::{read_e820_table, MemoryMap};
use paravirt::phys::Bytes;
use paravirt::{BootInfo, Counters, Detected, ExitStatus, HvError, HvResult, Hypervisor, Verdict};

use crate::abi::nr;
use crate::check;
use crate::console::Console;
use crate::hypercall::{self, HypercallPage};

pub struct XenHvm {
    hc: HypercallPage,
    console: Console,
    page_ready: AtomicBool,
}

pub(crate) static XEN_HVM: XenHvm =
    XenHvm { hc: HypercallPage::new(), console: Console::new(), page_ready: AtomicBool::new(false) };

pub const SIGNATURE: &[u8; 12] = b"XenVMMXenVMM";

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
        let map =
            read_e820_table(&Bytes(&buf), 0, arg.nr_entries as u64, E820_ENTRY as u64, "XENMEM_memory_map")?;
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
}
