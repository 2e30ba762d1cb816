//! The pagetable build as a domU, next to the same build as dom0.
//!
//! A domU's initial pagetable and start_info come from libxenguest (`xl
//! create`), not from Xen's dom0 builder, and it runs unprivileged, so what
//! the idempotent build keeps and what it costs may differ. One dom0 boot
//! under `-icount` runs each guest twice (the second run checks the first);
//! the figures sit next to the dom0 rows' of the same size.
//!
//! The instruction counts are TSC deltas as the guest sees them. A domU's
//! `rdtsc` is emulated by Xen under TCG (no invariant TSC), at the rate Xen
//! calibrated for the physical TSC, which `-icount` makes one tick per
//! instruction: `perf: calibration` says how close that came (3000 is
//! exact), and each reading costs a trap that the figure includes. Anything
//! dom0 ran in between is counted too (its console daemon draining the
//! guest's ring), so only the hypercall and pte counts are gated to agree
//! across the two runs; the instructions' spread is shown.

use std::collections::BTreeMap;
use std::path::Path;

use crate::boot::{self, Boot};
use crate::domu;
use pvops_tests::Env;

/// One guest configuration, run twice in the same dom0 boot.
struct Config {
    name: &'static str,
    pvh: bool,
    mem_mib: u64,
    /// The dom0 row of the benchmark to compare with (same memory size).
    dom0_row: &'static str,
}

const CONFIGS: &[Config] = &[
    Config { name: "domu-pv", pvh: false, mem_mib: 64, dom0_row: "xen-pv" },
    Config { name: "domu-pvh", pvh: true, mem_mib: 64, dom0_row: "xen-pvh" },
];
const RUNS: usize = 2;

/// The figures of one configuration: the first run's, and whether the
/// second run's counts agreed.
pub struct Figures {
    name: &'static str,
    mem_mib: u64,
    dom0_row: &'static str,
    perf: BTreeMap<String, i64>,
    /// Largest difference between the runs' pagetable instructions.
    spread: i64,
    counts_agree: bool,
}

/// Boots dom0 once under `-icount` with every configuration's guests.
pub fn measure(kernel: &Path, xen: &Path) -> Result<Vec<Figures>, String> {
    let mut guests = Vec::new();
    for c in CONFIGS {
        for run in 0..RUNS {
            guests.push(domu::Guest {
                name: format!("bench-{}-{}", c.name, run),
                pvh: c.pvh,
                kernel: kernel.to_path_buf(),
                mem_mib: c.mem_mib,
                cmdline: "perf timetest=short procs=2 procmem=1".into(),
                timeout: domu::GUEST_TIMEOUT,
            });
        }
    }
    println!(
        "xtask: bench domU: one dom0 boot under -icount, {} guests (each configuration twice)",
        guests.len()
    );
    let dom0 = domu::prepare(guests)?;
    let b = Boot {
        env: Env::XenDomu,
        kernel: kernel.to_path_buf(),
        loader: None,
        hypervisor: Some(xen.to_path_buf()),
        cpu: "max,-x2apic".into(),
        mem: format!("{}M", CONFIGS[0].mem_mib),
        append: String::new(),
        accel: "tcg".into(),
        gdb: None,
        icount: true,
        timeout: dom0.timeout() * 2,
        dom0: Some(dom0),
    };
    let whole = boot::run(&b, false);
    let runs = domu::finish(b.dom0.as_ref().expect("set above"), &whole);
    let mut out = Vec::new();
    for (i, c) in CONFIGS.iter().enumerate() {
        let mut perfs = Vec::new();
        for run in &runs[i * RUNS..(i + 1) * RUNS] {
            if !run.outcome.is_success() {
                return Err(format!("domU {} {}M: {:?}\n{}", c.name, c.mem_mib, run.outcome, run.log));
            }
            perfs.push(crate::bench::perf_lines(&run.log));
        }
        let first = perfs[0].clone();
        let counts_agree = perfs.iter().all(|p| counts(p) == counts(&first));
        let insns: Vec<i64> = perfs.iter().map(build_insns).collect();
        let spread = insns.iter().max().unwrap_or(&0) - insns.iter().min().unwrap_or(&0);
        out.push(Figures {
            name: c.name,
            mem_mib: c.mem_mib,
            dom0_row: c.dom0_row,
            perf: first,
            spread,
            counts_agree,
        });
    }
    Ok(out)
}

/// The figures that must agree exactly between two runs.
fn counts(p: &BTreeMap<String, i64>) -> Vec<i64> {
    COUNTED.iter().map(|k| p.get(*k).copied().unwrap_or(-1)).collect()
}

const COUNTED: &[&str] = &[
    "pagetable.hypercalls",
    "pagetable.mmu_update_entries",
    "pagetable.ptes_written",
    "pagetable.ptes_kept",
    "mark_rodata_ro.hypercalls",
];

/// Instructions from `pagetable_setup_start` to `pagetable_setup_done`.
fn build_insns(p: &BTreeMap<String, i64>) -> i64 {
    ["insns.setup_start", "insns.direct_map", "insns.fixmap_pkmap", "insns.setup_done"]
        .iter()
        .map(|k| p.get(*k).copied().unwrap_or(0))
        .sum()
}

/// Prints the domU table; `dom0` finds a dom0 row's figures by name and
/// memory size. Returns what missed (a count that differed between runs, a
/// figure the kernel did not print).
pub fn report(
    figures: &[Figures],
    dom0: impl Fn(&str, &str) -> Option<BTreeMap<String, i64>>,
) -> Vec<String> {
    let mut misses = Vec::new();
    println!(
        "\n{:<20} {:>5} {:>8} {:>10} {:>9} {:>9} {:>10} {:>9} {:>7} {:>6}",
        "domU vs dom0",
        "mem",
        "pt hc",
        "pt insns",
        "written",
        "kept",
        "rodata hc",
        "x dom0",
        "spread",
        "calib"
    );
    for f in figures {
        let mem = format!("{}M", f.mem_mib);
        let line = |who: &str, p: &BTreeMap<String, i64>, x: String, spread: String| {
            let g = |k: &str| p.get(k).copied().unwrap_or(-1);
            println!(
                "{:<20} {:>5} {:>8} {:>10} {:>9} {:>9} {:>10} {:>9} {:>7} {:>6}",
                who,
                mem,
                g("pagetable.hypercalls"),
                build_insns(p),
                g("pagetable.ptes_written"),
                g("pagetable.ptes_kept"),
                g("mark_rodata_ro.hypercalls"),
                x,
                spread,
                g("calibration"),
            );
        };
        let d0 = dom0(f.dom0_row, &mem);
        let x = d0.as_ref().map(|d| build_insns(&f.perf) as f64 / build_insns(d).max(1) as f64);
        line(f.name, &f.perf, x.map(|x| format!("{x:.2}")).unwrap_or("-".into()), f.spread.to_string());
        match &d0 {
            Some(d) => line(&format!("  as dom0 ({})", f.dom0_row), d, "1.00".into(), "0".into()),
            None => misses.push(format!("{}: no {} {mem} row to compare with", f.name, f.dom0_row)),
        }
        if !f.counts_agree {
            misses.push(format!("{} {mem}: hypercall or pte counts differ between two runs", f.name));
        }
        if COUNTED.iter().any(|k| !f.perf.contains_key(*k)) {
            misses.push(format!("{} {mem}: the guest printed no pagetable figures", f.name));
        }
    }
    misses
}
