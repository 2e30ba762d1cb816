//! The bench's table for issue 14's targets (performance past the
//! anchors), one line per row and size:
//!
//! - `rodata`: instructions of `mark_rodata_ro`, which visits the image
//!   and what the build kept, never the whole direct map: at most 1M at
//!   every size, in every environment.
//! - dispatch: the kernel's detached build and fork+exit of 1 MiB (see
//!   `kernel/src/dispatch.rs`) through `&dyn Mmu` (`dyn`), monomorphized
//!   (`dir`), and the way the kernel runs them (`krn`: `devirt!`). Only
//!   where the backend's MMU type is paravirt's native one. `krn/dir` is
//!   gated at 1.01 (the dispatched path within 1% of direct calls);
//!   `dyn/dir` is reported: what the trait object costs where it is used.
//! - `total`: instructions from kernel entry to the result line, less the
//!   time self-test (`perf: total.insns`): the self-test lasts the same
//!   span of virtual time in every environment (half a second of ticks, a
//!   sleep, a storm: about 475M TSC ticks, nearly all waiting), and under
//!   `-icount` its count varies by a few dozen between runs; its costs per
//!   operation are in the interrupts/time table.
//!
//! Then lguest against native 2-level with 4 KiB pages (the same format
//! and page size) at each size both ran: the totals' ratio, gated at 1.10
//! (the host's work included: the TSC counts every instruction the
//! virtual CPU runs); the same without the clock set-up as well (natively
//! the TSC is calibrated against the PIT for a span of virtual time; the
//! lguest host says its rate), and the wall-clock ratio, reported.

use pvops_tests::Env;

use crate::bench::{fmt_opt, gate, Result};

/// Phases of the total that last a span of virtual time, whatever the
/// work: the clock set-up (natively the TSC is calibrated against the
/// PIT). The time self-test is not in the total at all.
const CLOCK_BOUND: &[&str] = &["insns.irq_time_init"];

fn ratio(r: &Result, a: &str, b: &str) -> Option<f64> {
    let (x, y) = (r.get(a), r.get(b));
    (r.perf.contains_key(a) && y != 0).then(|| x as f64 / y as f64)
}

pub fn table(results: &[Result], misses: &mut Vec<String>) {
    println!(
        "\n{:<18} {:>5} {:>9} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "past the anchors", "mem", "rodata", "build", "build", "fork 1M", "fork 1M", "total"
    );
    println!(
        "{:<18} {:>5} {:>9} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "", "", "insns", "dyn/dir", "krn/dir", "dyn/dir", "krn/dir", "insns"
    );
    println!(
        "{:<18} {:>5} {:>9} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "target", "", "<= 1M", "(report)", "<= 1.01", "(report)", "<= 1.01", "(report)"
    );
    for r in results {
        let rodata =
            r.perf.contains_key("insns.mark_rodata_ro").then(|| r.get("insns.mark_rodata_ro") as f64);
        let build_dyn = ratio(r, "dispatch.dyn.insns", "dispatch.direct.insns");
        let build_krn = ratio(r, "dispatch.kernel.insns", "dispatch.direct.insns");
        let fork_dyn = ratio(r, "dispatch.fork.dyn.insns", "dispatch.fork.direct.insns");
        let fork_krn = ratio(r, "dispatch.fork.kernel.insns", "dispatch.fork.direct.insns");
        println!(
            "{:<18} {:>5} {:>9} {:>10} {:>10} {:>10} {:>10} {:>12}",
            r.row.name,
            r.mem,
            fmt_opt(rodata, 0),
            fmt_opt(build_dyn, 4),
            fmt_opt(build_krn, 4),
            fmt_opt(fork_dyn, 4),
            fmt_opt(fork_krn, 4),
            r.perf.get("total.insns").map(|v| v.to_string()).unwrap_or_else(|| "-".into())
        );
        gate(misses, r, "mark_rodata_ro instructions", rodata, |v| v <= 1e6, "<= 1M");
        gate(misses, r, "build through devirt!/direct", build_krn, |v| v <= 1.01, "<= 1.01");
        gate(misses, r, "fork+exit through devirt!/direct", fork_krn, |v| v <= 1.01, "<= 1.01");
        // Native rows must measure dispatch at all: a kernel that stopped
        // printing the figures would pass the gates above by saying nothing.
        if r.row.env == Env::Qemu && r.row.name.starts_with("native") && build_krn.is_none() {
            misses.push(format!("{} {}: no dispatch figures (perf: dispatch.*)", r.row.name, r.mem));
        }
    }
    lguest_ratio(results, misses);
}

/// Totals of the boot less the clock-bound phases.
fn work(r: &Result) -> i64 {
    r.get("total.insns") - CLOCK_BOUND.iter().map(|k| r.get(k)).sum::<i64>()
}

/// lguest against native 2-level 4 KiB pages, at each size both ran.
fn lguest_ratio(results: &[Result], misses: &mut Vec<String>) {
    let boot_row = |name: &str, mem: &str| {
        results.iter().find(|r| r.row.name == name && r.mem == mem && r.perf.contains_key("total.insns"))
    };
    for lg in results.iter().filter(|r| r.row.name == "lguest") {
        let Some(native) = boot_row("native-2level-4k", lg.mem) else { continue };
        let Some(lg) = boot_row("lguest", lg.mem) else { continue };
        let total = lg.get("total.insns") as f64 / native.get("total.insns") as f64;
        let busy = work(lg) as f64 / work(native) as f64;
        let wall = lg.wall.as_secs_f64() / native.wall.as_secs_f64();
        println!(
            "lguest / native-2level-4k {:>5}: entry to result {:.3} (target <= 1.10; {} / {} instructions), without the clock set-up {:.3} (report), wall {:.2} (report)",
            lg.mem,
            total,
            lg.get("total.insns"),
            native.get("total.insns"),
            busy,
            wall
        );
        gate(
            misses,
            lg,
            "instructions from entry to result against native 2-level",
            Some(total),
            |v| v <= 1.10,
            "<= 1.10",
        );
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::bench::ROWS;

    fn result(name: &str, mem: &'static str, figures: &[(&str, i64)]) -> Result {
        Result {
            row: ROWS.iter().find(|r| r.name == name).unwrap(),
            mem,
            perf: figures.iter().map(|&(k, v)| (k.to_string(), v)).collect::<BTreeMap<_, _>>(),
            wall: Duration::from_secs(1),
            baseline: Duration::from_secs(1),
            deterministic: true,
        }
    }

    fn native(rodata: i64, kernel: i64, total: i64) -> Result {
        result(
            "native-2level-4k",
            "896M",
            &[
                ("insns.mark_rodata_ro", rodata),
                ("dispatch.dyn.insns", 1030),
                ("dispatch.direct.insns", 1000),
                ("dispatch.kernel.insns", kernel),
                ("dispatch.fork.dyn.insns", 1200),
                ("dispatch.fork.direct.insns", 1000),
                ("dispatch.fork.kernel.insns", 1000),
                ("total.insns", total),
                ("insns.irq_time_init", 40),
            ],
        )
    }

    fn lguest(total: i64) -> Result {
        result("lguest", "896M", &[("insns.mark_rodata_ro", 100_000), ("total.insns", total)])
    }

    fn misses(results: &[Result]) -> Vec<String> {
        let mut m = Vec::new();
        table(results, &mut m);
        m
    }

    #[test]
    fn within_every_target_nothing_is_missed() {
        // dyn/dir 1.03 and the fork's 1.2 are reported, not gated.
        assert_eq!(misses(&[native(10_000, 1005, 1000), lguest(1100)]), Vec::<String>::new());
    }

    #[test]
    fn each_target_missed_is_named() {
        let m = misses(&[native(1_000_001, 1011, 1000), lguest(1101)]);
        assert_eq!(m.len(), 3, "{m:?}");
        assert!(m[0].contains("mark_rodata_ro instructions 1000001"), "{m:?}");
        assert!(m[1].contains("build through devirt!/direct 1.011"), "{m:?}");
        assert!(m[2].starts_with("lguest 896M: instructions from entry to result"), "{m:?}");
    }

    #[test]
    fn a_native_row_without_dispatch_figures_is_a_miss() {
        let silent = result("native-pae-pse", "64M", &[("insns.mark_rodata_ro", 4000)]);
        let m = misses(&[silent]);
        assert_eq!(m, ["native-pae-pse 64M: no dispatch figures (perf: dispatch.*)"]);
    }
}
