//! The pvops kernel: boot, choose a backend, build the pagetable through
//! it, verify the result, report.
//!
//! ```text
//! head.rs (or a backend's entry)      entry registers -> start_kernel
//!   boot::gather                      -> BootInfo (protocol, command line,
//!                                        memory map, CPUID): every detection input
//!   paravirt::evaluate / select       -> &'static dyn Hypervisor
//!   hv.init                           backend set-up (hypercalls, ...)
//!   paging::choose                    hv.paging(): format and features
//!   pagetable::build                  hv.mmu(): the seed's idempotent build
//!     mm::pagetable_init                pagetable_setup_start, alloc_pt/alloc_pd,
//!                                       set_pte_range/set_pmd/set_pgd, pagetable_setup_done
//!     mm::protect::mark_rodata_ro       W^X on mappings the build kept
//!     selfcheck::run                    walk the live table, verify
//!   memory::selftest                  every runtime MMU hook once
//!   irq::init, time::init             hv.irq(), hv.time(): controller, clocks
//!   timetest::run                     ticks, clock, disabled sections, halt, storm
//!   workload::run                     processes: init forks children (sched, vm,
//!                                     syscall), every hook's allocation released
//!   result::finish                    one "Test result: ..." line + hv.shutdown
//! ```
#![no_std]
#![no_main]

#[cfg(feature = "lguest")]
use backend_lguest as _;
#[cfg(feature = "native")]
use backend_native as _;
#[cfg(feature = "xen")]
use backend_xen as _;

mod boot;
mod console;
mod devirt;
mod dispatch;
mod entry;
mod fault;
mod head;
mod irq;
mod mem;
mod memory;
mod pagefault;
mod pagetable;
mod paging;
mod perf;
mod proccheck;
mod programs;
mod ramcheck;
mod result;
mod sched;
mod selfcheck;
mod syscall;
mod task;
mod time;
mod timetest;
mod trap;
mod vm;
mod workload;

use paravirt::bootinfo::{BootInfoError, SUBARCH_LGUEST};
use paravirt::{BootInfo, BootProtocol, Hypervisor, SelectError, HYPERVISORS};

#[no_mangle]
extern "C" fn start_kernel(protocol: u32, info: u32) -> ! {
    perf::start();
    let cpl = arch_i386::desc::cpl();
    if cpl == 0 {
        trap::init_native();
    }
    console::init_log();
    let mut boot = boot::gather(protocol, info, cpl);
    perf::enable(boot.cmdline.has("perf"));
    kprintln!("pvops {} entered via {} in ring {}", env!("CARGO_PKG_VERSION"), boot.protocol.name(), cpl);
    let hv = choose_backend(&boot);
    console::set_backend(hv, Some(&boot));
    // A lying boot_params is reported before the backend acts on it:
    // lguest's init sizes its scan of the Launcher's map by the memory map,
    // and would fail for a reason that hides the lie. (Other protocols wait
    // for init: Xen's backends replace a missing map with XENMEM_memory_map.)
    if let (BootProtocol::LinuxBoot { .. }, Some(e)) = (boot.protocol, boot.info_error) {
        fail!("bad boot information: {}", e);
    }
    // The whole line against the one table of switches, before anything
    // acts on it: a bad value is one FAILURE naming the switch; a key
    // nobody knows is passed on, as Linux does, with a line saying so.
    let unknown = |w| kprintln!("warning: unknown command-line switch {} (passed on)", w);
    if let Err(e) = paravirt::switches::validate(&boot.cmdline, unknown) {
        fail!("bad command line: {}", e);
    }
    if let Err(e) = hv.init(&mut boot) {
        fail!("backend {} failed to initialise: {}", hv.name(), e);
    }
    perf::phase("entry_to_backend");
    if boot.cmdline.get("bench") == Some("baseline") {
        // The benchmark's baseline: a kernel that does nothing but enter,
        // pick its console and report.
        result::finish()
    }
    if cpl != 0 {
        if let Err(e) = trap::init_pv(hv) {
            fail!("loading the IDT through {}: {}", hv.name(), e);
        }
    }
    log_boot_info(&boot);
    if let Some(e) = boot.info_error {
        fail!("bad boot information: {}", e);
    }
    fault::inject(&boot);
    let paging = paging::choose(hv, &boot);
    let layout = pagetable::layout(hv, &boot, &paging);
    let booted = pagetable::build(hv, &boot, paging, layout);
    // On bare metal (ring 0) the memory itself says whether the map lied.
    if cpl == 0 {
        if let Err(e) = ramcheck::check(&boot, &booted.layout) {
            fail!("bad boot information: {}", e);
        }
    }
    if !booted.report.ok() {
        fail!("self-check found problems in the live pagetable");
    }
    let mut memory = memory::Memory::new(hv, &boot, booted);
    memory::selftest(&mut memory);
    perf::phase("memory");
    dispatch::measure(&mut memory);
    if let Err(e) = hv.late_init(&memory) {
        fail!("backend {} failed its late set-up: {}", hv.name(), e);
    }
    let controller = irq::init(hv, &memory);
    let clocks = time::init(hv, &memory, &boot.cmdline);
    kprintln!("irq: {}", controller);
    log_clocks(&clocks);
    let scale = match boot.cmdline.get_choice("timetest", &["full", "short"], "full or short") {
        Ok(Some("short")) => timetest::SHORT,
        Ok(_) => timetest::FULL,
        Err(e) => fail!("bad command line: {}", e),
    };
    perf::phase("irq_time_init");
    timetest::run(hv, scale, boot.cmdline.get("fault") == Some("irq"));
    perf::leave_out("the time self-test");
    let children = match boot.cmdline.get_u32("procs") {
        Ok(n) => n,
        Err(e) => fail!("bad command line: {}", e),
    };
    let fail_fork = match boot.cmdline.get_u32("fail_fork") {
        Ok(n) => n.unwrap_or(0),
        Err(e) => fail!("bad command line: {}", e),
    };
    let max_mib = match boot.cmdline.get_u32("procmem") {
        Ok(n) => n,
        Err(e) => fail!("bad command line: {}", e),
    };
    let params = workload::params(&memory, children, max_mib, fail_fork);
    workload::run(hv, memory, params);
    result::finish()
}

/// Logs every candidate's verdict and picks one, or ends the run.
fn choose_backend(boot: &BootInfo) -> &'static dyn Hypervisor {
    for leaf in boot.cpu.hypervisor_leaves() {
        kprintln!("cpuid: {:#x} \"{}\" (max leaf {:#x})", leaf.base, leaf.signature_str(), leaf.max_leaf);
    }
    let cands = match paravirt::evaluate(&HYPERVISORS, boot) {
        Ok(c) => c,
        Err(SelectError::Empty) => {
            skip!("no backend in this image: build it with at least one of the features native, xen, lguest")
        }
        Err(e) => error!("backend registry: {:?}", e),
    };
    kprintln!("registry: {} backends: {}", cands.len(), cands);
    for (h, v) in cands.iter() {
        match v {
            Ok(d) => kprintln!("candidate {}: detected, priority {} ({})", h.name(), d.priority, d.why),
            Err(why) => kprintln!("candidate {}: not detected ({})", h.name(), why),
        }
    }
    let forced = boot.cmdline.get("hypervisor");
    match paravirt::select(&cands, forced) {
        Ok(hv) => {
            let how = if forced.is_some() { "forced by hypervisor=" } else { "highest priority detected" };
            kprintln!("backend: {} ({})", hv.name(), how);
            hv
        }
        Err(e) => {
            // Report on the console we would have had without the override.
            if let Some(best) = cands.best() {
                console::set_backend(best, Some(boot));
            }
            match e {
                SelectError::Unknown(name) => {
                    fail!("hypervisor={}: no such backend in this image (have: {})", name, cands)
                }
                SelectError::NotDetected(name, why) => {
                    fail!("hypervisor={}: backend {} does not detect this platform: {}", name, name, why)
                }
                SelectError::NoneDetected => {
                    // No backend takes a platform the loader lied about: a
                    // ring-1 entry whose hardware_subarch is not lguest's,
                    // a PVH version 0 outside Xen. The lie, not the
                    // image's choice of backends, is why: a FAILURE that
                    // names it, not a SKIP.
                    let subarch = boot.hardware_subarch().filter(|&s| boot.cpl != 0 && s != SUBARCH_LGUEST);
                    if let Some(value) = subarch {
                        // Whoever entered us in ring 1 with a boot_params
                        // is a Launcher; lguest's console reaches it, and
                        // works before lguest's init.
                        if let Some((h, _)) = cands.find("lguest") {
                            console::set_backend(h, Some(boot));
                        }
                        fail!("bad boot information: {}", BootInfoError::Subarch { value })
                    }
                    if let Some(e) = boot.info_error {
                        fail!("bad boot information: {}", e)
                    }
                    skip!("no backend in this image detects this platform (have: {})", cands)
                }
                e => error!("backend selection: {:?}", e),
            }
        }
    }
}

fn log_clocks(c: &paravirt::Clocks) {
    let rate = if c.source_khz != 0 {
        let mut l = console::Line::new();
        let _ = core::fmt::Write::write_fmt(
            &mut l,
            format_args!(" at {}.{:03} MHz", c.source_khz / 1000, c.source_khz % 1000),
        );
        l
    } else {
        console::Line::new()
    };
    kprintln!(
        "time: clocksource {}{} ({}), clockevent {} ({}one-shot {}-{} us), wall clock from {}",
        c.source,
        core::str::from_utf8(rate.as_bytes()).unwrap_or(""),
        c.source_how,
        c.event,
        if c.periodic.is_some() { "periodic and " } else { "" },
        c.min_delta_ns / 1000,
        c.max_delta_ns / 1000,
        c.wallclock
    );
}

fn log_boot_info(boot: &BootInfo) {
    let c = &boot.cpu;
    kprintln!(
        "cpu: {} family {} model {}: pae={} pse={} pge={} nx={} (cpuid {})",
        c.vendor_str(),
        c.family,
        c.model,
        c.pae as u8,
        c.pse as u8,
        c.pge as u8,
        c.nx as u8,
        if c.has_cpuid { "yes" } else { "no" }
    );
    kprintln!("cmdline: \"{}\"", boot.cmdline.as_str());
    if boot.cmdline.truncated {
        kprintln!(
            "warning: the command line was longer than {} bytes and was cut",
            paravirt::cmdline::CMDLINE_MAX
        );
    }
    if let Some(at) = boot.cmdline.invalid_at {
        fail!("bad boot information: command line byte {} is not UTF-8", at);
    }
    for r in boot.memory.regions() {
        kprintln!("memory: {:#011x}-{:#011x} {:?}", r.start, r.end(), r.kind);
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    fail!("panic: {}", info)
}
