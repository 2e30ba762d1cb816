//! `cargo xtask test`: host tests, then every row of the boot matrix,
//! then one summary table. Exit 0 only if everything passed; the serial
//! log of every failed boot is printed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use paravirt::ExitStatus;
use pvops_tests::{matrix, BootCase, Check, Env, Want};

use crate::boot::{self, Boot, Outcome, Run};
use crate::{build, domu, toolchain, tools, EXIT_SETUP};

/// Per-boot timeouts. A native TCG boot takes well under a second and Xen
/// with dom0 a few seconds, so these only bound hangs.
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
pub const XEN_TIMEOUT: Duration = Duration::from_secs(180);

/// The host tests: every host crate, and the lguest host's library (its
/// binary is bare-metal only, so it is not a default member).
const HOST_TESTS: &[&[&str]] = &[&["test", "--quiet"], &["test", "--quiet", "-p", "lguest-host", "--lib"]];

pub fn main(args: &[String]) -> u8 {
    let mut filter = None;
    let mut host = true;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--filter" => filter = it.next().cloned(),
            "--boot-only" => host = false,
            other => {
                eprintln!("xtask test: unknown option {other}");
                return EXIT_SETUP;
            }
        }
    }
    if host {
        for args in HOST_TESTS {
            let mut cargo = match toolchain::cargo() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("xtask: {e}");
                    return EXIT_SETUP;
                }
            };
            println!("xtask: host tests (cargo {})", args.join(" "));
            let ok = cargo.current_dir(build::root()).args(*args).status().map(|s| s.success()).unwrap_or(false);
            if !ok {
                eprintln!("xtask: host tests failed");
                return 1;
            }
        }
    }
    if let Err(e) = toolchain::cargo().and_then(|_| tools::ensure_qemu()) {
        eprintln!("xtask: {e}");
        return EXIT_SETUP;
    }
    let mut cases: Vec<BootCase> =
        matrix().into_iter().filter(|c| filter.as_deref().is_none_or(|f| c.name.contains(f))).collect();
    let (mut boots, mut slots) = match prepare(&cases) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("xtask: {e}");
            return EXIT_SETUP;
        }
    };
    match crate::scaffold_check::prepare(filter.as_deref(), tools::hypervisor) {
        Ok(rows) => {
            for (c, b) in rows {
                cases.push(c);
                slots.push(Slot { boot: boots.len(), guest: None });
                boots.push(b);
            }
        }
        Err(e) => {
            eprintln!("xtask: scaffold check: {e}");
            return EXIT_SETUP;
        }
    }
    println!("xtask: booting {} matrix rows", cases.len());
    let results = row_runs(&boots, run_all(&boots), &slots);
    report(&cases, &results)
}

/// Which boot runs a row: its own, or a guest of the one dom0 boot that
/// runs every domU row.
struct Slot {
    boot: usize,
    guest: Option<usize>,
}

/// Builds every image the rows need, once per configuration; the boots to
/// run (the dom0 boot first: it is the longest), and each row's slot.
fn prepare(cases: &[BootCase]) -> Result<(Vec<Boot>, Vec<Slot>), String> {
    let mut images = HashMap::new();
    let mut loader = None;
    let mut hypervisors: HashMap<String, Option<PathBuf>> = HashMap::new();
    let domu_first = cases.iter().any(|c| c.env.is_domu()) as usize;
    let mut boots = Vec::new();
    let mut slots = Vec::new();
    let mut guests = Vec::new();
    for c in cases {
        let opts = build::Opts {
            release: false,
            features: c.features.map(str::to_string),
            no_default_features: c.features.is_some(),
        };
        if !images.contains_key(&opts) {
            let what = match c.features {
                None => "default features",
                Some("") => "no backend",
                Some(f) => f,
            };
            println!("xtask: building kernel ({what})");
            images.insert(opts.clone(), build::image("kernel", &opts)?);
        }
        if matches!(c.env, Env::BadBootInfo(_)) && loader.is_none() {
            println!("xtask: building mbloader");
            loader = Some(build::image("mbloader", &build::Opts::default())?);
        }
        // One hypervisor per kind (Xen serves both of its environments).
        let kind = if c.env.uses_xen() { "xen".to_string() } else { c.env.name() };
        if !hypervisors.contains_key(&kind) {
            hypervisors.insert(kind.clone(), tools::hypervisor(c.env)?);
        }
        let mut kernel = images[&opts].clone();
        if c.env == Env::QemuPvh {
            kernel = build::pvh_copy(&kernel)?;
        }
        if c.env.is_domu() {
            slots.push(Slot { boot: 0, guest: Some(guests.len()) });
            guests.push((c, kernel));
            continue;
        }
        slots.push(Slot { boot: domu_first + boots.len(), guest: None });
        boots.push(boot_for(c, kernel, loader.clone(), hypervisors[&kind].clone()));
    }
    if let Some(&(first, ref kernel)) = guests.first() {
        let dom0 = domu::prepare(
            guests
                .iter()
                .map(|(c, kernel)| domu::Guest {
                    name: c.name.to_string(),
                    pvh: c.env == Env::XenPvhDomu,
                    kernel: kernel.clone(),
                    mem_mib: boot::mib(c.mem).unwrap_or(128),
                    cmdline: c.cmdline(),
                    timeout: domu::GUEST_TIMEOUT,
                })
                .collect(),
        )?;
        let mut b = boot_for(first, kernel.clone(), None, hypervisors["xen"].clone());
        b.timeout = dom0.timeout();
        b.dom0 = Some(dom0);
        boots.insert(0, b);
    }
    Ok((boots, slots))
}

/// Each row's run: its boot's, or its guest's part of the dom0 boot.
fn row_runs(boots: &[Boot], results: Vec<Run>, slots: &[Slot]) -> Vec<Run> {
    let mut guests: HashMap<usize, Vec<Option<Run>>> = HashMap::new();
    for (i, (b, r)) in boots.iter().zip(&results).enumerate() {
        if let Some(d) = &b.dom0 {
            println!(
                "xtask: one dom0 boot ran the {} domU rows: {} in {:.1} s",
                d.guests.len(),
                r.outcome.word(),
                r.elapsed.as_secs_f64()
            );
            guests.insert(i, domu::finish(d, r).into_iter().map(Some).collect());
        }
    }
    let mut results: Vec<Option<Run>> = results.into_iter().map(Some).collect();
    slots
        .iter()
        .map(|s| match s.guest {
            None => results[s.boot].take(),
            Some(g) => guests.get_mut(&s.boot).and_then(|v| v[g].take()),
        })
        .map(|r| r.expect("one run per row"))
        .collect()
}

/// How a matrix row is booted, given its images.
pub fn boot_for(c: &BootCase, kernel: PathBuf, loader: Option<PathBuf>, hypervisor: Option<PathBuf>) -> Boot {
    Boot {
        env: c.env,
        kernel,
        loader,
        hypervisor,
        dom0: None,
        cpu: c.cpu.into(),
        mem: c.mem.into(),
        append: c.cmdline(),
        accel: "tcg".into(),
        gdb: false,
        icount: false,
        timeout: if c.env.uses_xen() { XEN_TIMEOUT } else { BOOT_TIMEOUT },
    }
}

/// Boots all rows, one per core (at most four at a time: each Xen boot
/// wants a core of its own).
fn run_all(boots: &[Boot]) -> Vec<Run> {
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).min(4);
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<Run>>> = Mutex::new((0..boots.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    let i = *n;
                    *n += 1;
                    i
                };
                if i >= boots.len() {
                    break;
                }
                let r = boot::run(&boots[i], false);
                results.lock().unwrap()[i] = Some(r);
            });
        }
    });
    results.into_inner().unwrap().into_iter().map(Option::unwrap).collect()
}

/// The first word after `prefix` on a line starting with it.
fn field<'a>(log: &'a str, prefix: &str) -> Option<&'a str> {
    log.lines().find_map(|l| l.strip_prefix(prefix)).and_then(|r| r.split_whitespace().next())
}

/// Does this run show what its row expects? Err says what is missing.
pub fn verify(c: &BootCase, r: &Run) -> Result<(), String> {
    let e = &c.expect;
    let ok = match (&e.result, &r.outcome) {
        (Want::Success, o) => o.is_success(),
        (Want::Failure(s), Outcome::Done(ExitStatus::Failure, why))
        | (Want::Error(s), Outcome::Done(ExitStatus::Error, why))
        | (Want::Skip(s), Outcome::Done(ExitStatus::Skip, why)) => why.contains(s),
        _ => false,
    };
    if !ok {
        return Err(format!("expected {:?}, got {:?}", e.result, r.outcome));
    }
    if let Some(b) = e.backend {
        let got = field(&r.log, "backend: ");
        if got != Some(b) {
            return Err(format!("expected backend {b}, log says {got:?}"));
        }
    }
    if let Some(p) = e.paging {
        let got = field(&r.log, "paging: ");
        if got != Some(p) {
            return Err(format!("expected paging {p}, log says {got:?}"));
        }
    }
    for line in e.lines.iter().chain(c.time_lines()) {
        if !r.log.contains(line) {
            return Err(format!("log lacks {line:?}"));
        }
    }
    for text in e.absent {
        if r.log.contains(text) {
            return Err(format!("log shows {text:?}, which it must not"));
        }
    }
    for check in e.checks {
        match check {
            Check::LguestHaltsAgree => lguest_halts_agree(&r.log)?,
        }
    }
    Ok(())
}

/// [`Check::LguestHaltsAgree`]: the host's count of HALT hypercalls is the
/// sum of the `N halts` the guest's `time:` lines report, and the sleep's
/// is not 0.
fn lguest_halts_agree(log: &str) -> Result<(), String> {
    let host: u64 = field(log, "lguest-host: guest halted ")
        .and_then(|n| n.parse().ok())
        .ok_or("log lacks \"lguest-host: guest halted N times\"")?;
    let (mut guest, mut sleep) = (0, None);
    for line in log.lines().filter(|l| l.starts_with("time: ")) {
        for (at, _) in line.match_indices(" halts") {
            // "..., 20 halts": the word before is the count (elsewhere, as
            // in "disabled, halts wake", it is not a number).
            let Some(Ok(n)) = line[..at].rsplit(' ').next().map(str::parse::<u64>) else { continue };
            guest += n;
            if line.starts_with("time: sleep ") {
                sleep = Some(n);
            }
        }
    }
    match sleep {
        None => Err("log lacks the guest's \"time: sleep 50 ms: N halts\" line".into()),
        Some(0) => Err("the guest's 50 ms sleep never halted".into()),
        Some(_) if guest != host => {
            Err(format!("the host counted {host} HALTs, the guest's time: lines report {guest} halts"))
        }
        Some(_) => Ok(()),
    }
}

fn report(cases: &[BootCase], results: &[Run]) -> u8 {
    let verdicts: Vec<Result<(), String>> = cases.iter().zip(results).map(|(c, r)| verify(c, r)).collect();
    for ((c, r), v) in cases.iter().zip(results).zip(&verdicts) {
        if let Err(why) = v {
            println!("\n===== {} FAILED: {why}\n----- serial log -----", c.name);
            print!("{}", r.log);
            println!("----- end of {} -----", c.name);
        }
    }
    println!(
        "\n{:<36} {:<18} {:<9} {:>5} {:<8} {:<8} {:<8} {:>6}  verdict",
        "row", "env", "cpu", "mem", "result", "backend", "paging", "time"
    );
    let mut failed = 0;
    for ((c, r), v) in cases.iter().zip(results).zip(&verdicts) {
        println!(
            "{:<36} {:<18} {:<9} {:>5} {:<8} {:<8} {:<8} {:>5.2}s  {}",
            c.name,
            c.env.name(),
            c.cpu,
            c.mem,
            r.outcome.word(),
            field(&r.log, "backend: ").unwrap_or("-"),
            field(&r.log, "paging: ").unwrap_or("-"),
            r.elapsed.as_secs_f64(),
            if v.is_ok() { "PASS" } else { "FAIL" }
        );
        failed += v.is_err() as usize;
    }
    println!("\n{} rows, {} passed, {} failed", cases.len(), cases.len() - failed, failed);
    if failed == 0 {
        0
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str =
        "time: 100 Hz one-shot: 20 ticks accounted in 200.597 ms, 20 interrupts (0 early), 20 halts
time: 1000 Hz one-shot: 100 ticks accounted in 100.179 ms, 97 interrupts (0 early), 97 halts
time: sleep 50 ms: 51 halts, 51 interrupts while asleep, 51 ms elapsed
time: SUCCESS: 1000000 clock reads monotonic, interrupts held while disabled, halts wake on events
lguest-host: guest halted 168 times, woken 168 times by an interrupt; 331 ms idle
";

    #[test]
    fn lguest_halts_agree_sums_the_guests_halts_against_the_hosts() {
        assert_eq!(lguest_halts_agree(LOG), Ok(()));
        let off_by_one = LOG.replace("halted 168", "halted 167");
        assert!(lguest_halts_agree(&off_by_one).unwrap_err().contains("167 HALTs"));
        assert!(lguest_halts_agree(&LOG.replace("lguest-host: guest halted", "x")).is_err());
        assert!(lguest_halts_agree(&LOG.replace("time: sleep", "x")).is_err());
        let no_sleep_halts = LOG.replace("51 halts", "0 halts").replace("halted 168", "halted 117");
        assert!(lguest_halts_agree(&no_sleep_halts).unwrap_err().contains("never halted"));
    }
}
