//! `cargo xtask test`: host tests and a fuzz smoke pass, the set-up mistakes, then every row of
//! the boot matrix and the gdb sessions (progress shown as they run), then
//! one summary table and the report under target/matrix/ (`report.rs`).
//! Exit 0 only if everything passed; the log of every failed row is
//! printed.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use paravirt::ExitStatus;
use pvops_tests::gdb::{self as gdb_rows_, gdb_rows, GdbCase};
use pvops_tests::{matrix, BootCase, Check, Env, Want};

use crate::boot::{self, Boot, Outcome, Run};
use crate::progress::{self, Progress};
use crate::report::{self, Entry};
use crate::{build, domu, fuzz, gdb, miri, setup_errors, toolchain, tools, EXIT_SETUP};

/// Per-boot timeouts. A native TCG boot takes well under a second and Xen
/// with dom0 a few seconds, so these only bound hangs.
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
pub const XEN_TIMEOUT: Duration = Duration::from_secs(180);

/// The host tests: every host crate, and the libraries of the crates
/// whose binaries are bare-metal only (so they are not default members):
/// the lguest host's, user-lib, and the user programs' protocol.
const HOST_TESTS: &[&[&str]] = &[
    &["test", "--quiet"],
    &["test", "--quiet", "-p", "lguest-host", "-p", "user-lib", "-p", "user-programs", "--lib"],
];

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
    let started = Instant::now();
    let selected = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let mut entries = Vec::new();
    if host {
        let plain = HOST_TESTS.iter().map(|a| (a.iter().map(|s| s.to_string()).collect(), None));
        let miri = (miri::args(), Some(("MIRIFLAGS", miri::flags())));
        for (args, env) in plain.chain([miri]) {
            if env.is_some() {
                miri::announce();
            }
            match host_tests(&args, env) {
                Ok(e) => entries.push(e),
                Err(e) => {
                    eprintln!("xtask: {e}");
                    return EXIT_SETUP;
                }
            }
            if entries.last().is_some_and(|e| e.verdict.is_err()) {
                eprintln!("xtask: host tests failed");
                return finish(entries, started);
            }
        }
        match fuzz_smoke() {
            Ok(e) => entries.extend(e),
            Err(e) => {
                eprintln!("xtask: {e}");
                return EXIT_SETUP;
            }
        }
        if entries.iter().any(|e| e.verdict.is_err()) {
            eprintln!("xtask: the fuzz smoke pass failed");
            return finish(entries, started);
        }
    }
    let mistakes: Vec<_> = setup_errors::mistakes().into_iter().filter(|m| selected(m.name)).collect();
    if !mistakes.is_empty() {
        println!("xtask: {} set-up mistakes, each to be refused before building", mistakes.len());
        entries.extend(mistakes.iter().map(setup_errors::check));
    }
    if let Err(e) = toolchain::cargo().and_then(|_| tools::ensure_qemu()) {
        eprintln!("xtask: {e}");
        return EXIT_SETUP;
    }
    let mut cases: Vec<BootCase> = matrix().into_iter().filter(|c| selected(c.name)).collect();
    let sessions: Vec<GdbCase> = gdb_rows().into_iter().filter(|g| selected(g.name)).collect();
    let prepared = prepare(&cases).and_then(|(mut boots, mut slots)| {
        for (c, b) in crate::scaffold_check::prepare(filter.as_deref(), tools::hypervisor)
            .map_err(|e| format!("scaffold check: {e}"))?
        {
            cases.push(c);
            slots.push(Slot { boot: boots.len(), guest: None });
            boots.push(b);
        }
        let gdb_boots = prepare_gdb(&sessions)?;
        Ok((boots, slots, gdb_boots))
    });
    let (boots, slots, gdb_boots) = match prepared {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xtask: {e}");
            return EXIT_SETUP;
        }
    };
    let mut jobs: Vec<Job> = boots.into_iter().map(Job::Boot).collect();
    let first_gdb = jobs.len();
    jobs.extend(sessions.iter().zip(gdb_boots).map(|(g, b)| Job::Gdb(g, b)));
    println!("xtask: booting {} matrix rows and {} gdb sessions", cases.len(), sessions.len());
    // For the progress line: which rows each job carries, and its name.
    let described = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| match j {
            Job::Boot(b) if b.dom0.is_some() => {
                Progress::job("domu-boot", slots.iter().filter(|s| s.boot == i).count(), true)
            }
            Job::Boot(b) => {
                let row = slots.iter().position(|s| s.boot == i && s.guest.is_none());
                Progress::job(row.map_or("?", |r| cases[r].name), 1, b.env.uses_xen())
            }
            Job::Gdb(g, b) => Progress::job(g.name, 1, b.env.uses_xen()),
        })
        .collect();
    let times = build::root().join("target/matrix/times.tsv");
    let mut runs = run_all(&jobs, described, &times);
    let gdb_runs = runs.split_off(first_gdb);
    let boots: Vec<Boot> = jobs
        .into_iter()
        .filter_map(|j| match j {
            Job::Boot(b) => Some(b),
            Job::Gdb(..) => None,
        })
        .collect();
    let results = row_runs(&boots, runs, &slots);
    entries.extend(cases.iter().zip(results).map(|(c, r)| matrix_entry(c, r)));
    entries.extend(sessions.iter().zip(gdb_runs).map(|(g, r)| gdb_entry(g, r)));
    finish(entries, started)
}

/// The report: the failed rows' logs, one table, and target/matrix/.
fn finish(entries: Vec<Entry>, started: Instant) -> u8 {
    for e in entries.iter().filter(|e| e.verdict.is_err()) {
        let why = e.verdict.as_ref().err().map_or("", String::as_str);
        println!("\n===== {} FAILED: {why}\n----- log -----", e.name);
        print!("{}", e.log);
        println!("----- end of {} -----", e.name);
    }
    println!(
        "\n{:<36} {:<18} {:<9} {:>5} {:<8} {:<8} {:<8} {:>6}  verdict",
        "row", "env", "cpu", "mem", "result", "backend", "paging", "time"
    );
    for e in &entries {
        println!(
            "{:<36} {:<18} {:<9} {:>5} {:<8} {:<8} {:<8} {:>5.2}s  {}",
            e.name,
            e.env,
            e.cpu,
            e.mem,
            e.result,
            e.backend,
            e.paging,
            e.seconds,
            if e.verdict.is_ok() { "PASS" } else { "FAIL" }
        );
    }
    let failed = entries.iter().filter(|e| e.verdict.is_err()).count();
    let total = started.elapsed().as_secs_f64();
    println!("\n{} rows, {} passed, {} failed, {total:.0} s", entries.len(), entries.len() - failed, failed);
    let dir = build::root().join("target/matrix");
    match report::write(&dir, &entries, total) {
        Ok(()) => println!(
            "xtask: logs, junit.xml and index.html in {}",
            dir.strip_prefix(build::root()).unwrap_or(&dir).display()
        ),
        Err(e) => eprintln!("xtask: writing the report in {}: {e}", dir.display()),
    }
    if failed == 0 {
        0
    } else {
        1
    }
}

/// One run of the host tests (`env`: a variable it needs), its output
/// shown as it comes and kept.
fn host_tests(args: &[String], env: Option<(&str, String)>) -> Result<Entry, String> {
    let mut cargo = toolchain::cargo()?;
    // The summary names a long Miri command by its first words.
    let words = if args.len() > 12 { format!("{} ...", args[..12].join(" ")) } else { args.join(" ") };
    let line = match &env {
        Some((k, v)) => format!("{k}=\"{v}\" cargo {words}"),
        None => format!("cargo {words}"),
    };
    println!("xtask: host tests ({line})");
    let start = Instant::now();
    let (mut reader, writer) = std::io::pipe().map_err(|e| e.to_string())?;
    cargo.current_dir(build::root()).args(args);
    if let Some((k, v)) = env {
        cargo.env(k, v);
    }
    cargo.stdout(writer.try_clone().map_err(|e| e.to_string())?).stderr(writer);
    let mut child = cargo.spawn().map_err(|e| format!("running cargo: {e}"))?;
    drop(cargo);
    let mut log = String::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = reader.read(&mut buf) {
        if n == 0 {
            break;
        }
        let _ = std::io::stdout().write_all(&buf[..n]);
        log.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let ok = child.wait().is_ok_and(|s| s.success());
    Ok(Entry {
        group: "host",
        name: line,
        env: "host".into(),
        cpu: "-".into(),
        mem: "-".into(),
        result: if ok { "ok".into() } else { "failed".into() },
        backend: "-".into(),
        paging: "-".into(),
        seconds: start.elapsed().as_secs_f64(),
        verdict: if ok { Ok(()) } else { Err("cargo test failed".into()) },
        log,
    })
}

/// Seconds each fuzz target runs in the smoke pass: enough to replay the
/// corpus and try some thousands of new inputs, short enough that the
/// pass with its (warm) build stays well under a minute and a half.
const FUZZ_SMOKE_SECONDS: u32 = 3;

/// A short libFuzzer pass over every target (`cargo xtask fuzz`), a host
/// entry each; a crash fails it. cargo-fuzz is installed when missing, so
/// the pass never turns into a skip.
fn fuzz_smoke() -> Result<Vec<Entry>, String> {
    let opts =
        fuzz::Opts { seconds: FUZZ_SMOKE_SECONDS, jobs: 2, save_corpus: false, targets: fuzz::targets() };
    let outcomes = fuzz::run(&opts)?;
    fuzz::print_table(&outcomes);
    Ok(outcomes
        .into_iter()
        .map(|o| {
            let verdict = match (&o.broken, o.crashes.first()) {
                (_, Some(c)) => Err(format!("crash: {}", c.display())),
                (Some(b), None) => Err(b.clone()),
                (None, None) => Ok(()),
            };
            Entry {
                group: "host",
                name: format!("fuzz {} ({} runs, cov {})", o.target, o.execs, o.cov),
                env: "host".into(),
                cpu: "-".into(),
                mem: "-".into(),
                result: if o.crashes.is_empty() {
                    "ok".into()
                } else {
                    format!("{} crashes", o.crashes.len())
                },
                backend: "-".into(),
                paging: "-".into(),
                seconds: o.seconds,
                verdict,
                log: String::new(),
            }
        })
        .collect())
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
        // One hypervisor per kind: Xen serves all of its environments, the
        // lguest host its lying rows too.
        let kind = match c.env {
            _ if c.env.uses_xen() => "xen".to_string(),
            Env::LguestLie(_) => Env::Lguest.name(),
            _ => c.env.name(),
        };
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
        gdb: None,
        icount: false,
        timeout: if c.env.uses_xen() { XEN_TIMEOUT } else { BOOT_TIMEOUT },
    }
}

/// What a worker runs: a boot (several rows for the dom0 boot of the domU
/// rows), or a gdb session.
enum Job<'a> {
    Boot(Boot),
    Gdb(&'a GdbCase, Boot),
}

impl Job<'_> {
    fn run(&self) -> Run {
        match self {
            Job::Boot(b) => boot::run(b, false),
            Job::Gdb(g, b) => gdb_run(g, b),
        }
    }
}

/// Runs every job, one per core (at most four at a time: each Xen boot
/// wants a core of its own), showing progress.
fn run_all(jobs: &[Job], described: Vec<progress::Job>, times: &std::path::Path) -> Vec<Run> {
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).min(4);
    let progress = Mutex::new(Progress::new(described, workers, times));
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<Run>>> = Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    let i = *n;
                    *n += 1;
                    i
                };
                if i >= jobs.len() {
                    break;
                }
                progress.lock().unwrap().started(i);
                let r = jobs[i].run();
                results.lock().unwrap()[i] = Some(r);
                progress.lock().unwrap().finished(i);
            });
        }
    });
    progress.into_inner().unwrap().save(times);
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
    for line in e.lines.iter().chain(c.runtime_lines()) {
        if !r.log.contains(line) {
            return Err(format!("log lacks {line:?}"));
        }
    }
    for text in e.absent {
        if r.log.contains(text) {
            return Err(format!("log shows {text:?}, which it must not"));
        }
    }
    if !c.runtime_lines().is_empty() {
        highmem_used(&r.log)?;
    }
    for check in e.checks {
        match check {
            Check::LguestHaltsAgree => lguest_halts_agree(&r.log)?,
            Check::LguestAuditAcrossEvictions => lguest_audit_across_evictions(&r.log)?,
        }
    }
    Ok(())
}

/// Every row that runs the process workload: with high memory, user pte
/// pages lived there (HIGHPTE) and the pkmap was used (`highmem: N user pte
/// pages in high memory (kmap_atomic_pte), M kmaps through K pkmap slots (F
/// flushes), H KiB of high memory`, N > 0 and M > 0); without, both are 0.
/// H, the high memory below 4 GiB, is at most the layout line's `highmem
/// X MiB` (which counts RAM above 4 GiB too, never used). And the process
/// check found no pte page mapped against the paging policy (`..., 0
/// against the paging policy`: under Xen PV, no pinned one writable).
fn highmem_used(log: &str) -> Result<(), String> {
    let line = log
        .lines()
        .find_map(|l| l.strip_prefix("highmem: "))
        .ok_or("log lacks the workload's \"highmem: ...\" line")?;
    let num = |before: &str| -> Result<u64, String> {
        let at = line.find(before).ok_or(format!("\"highmem: {line}\" lacks {before:?}"))?;
        line[..at]
            .rsplit([' ', '('])
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or(format!("\"highmem: {line}\": no number before {before:?}"))
    };
    let (ptes, kmaps, kib) = (num(" user pte pages")?, num(" kmaps")?, num(" KiB of high memory")?);
    let layout_mib: u64 = log
        .lines()
        .filter(|l| l.starts_with("layout: "))
        .find_map(|l| l.split("highmem ").nth(1)?.split_whitespace().next()?.parse().ok())
        .ok_or("log lacks the layout line's \"highmem N MiB\"")?;
    if kib / 1024 > layout_mib {
        return Err(format!("the workload saw {kib} KiB of high memory, the layout only {layout_mib} MiB"));
    }
    if kib > 0 && (ptes == 0 || kmaps == 0) {
        return Err(format!("{kib} KiB of high memory, but {ptes} pte pages and {kmaps} kmaps used it"));
    }
    if kib == 0 && (ptes != 0 || kmaps != 0) {
        return Err(format!("no high memory, but {ptes} high pte pages and {kmaps} kmaps"));
    }
    if !log.lines().any(|l| l.starts_with("proccheck: ") && l.contains(", 0 against the paging policy")) {
        return Err("log lacks \"proccheck: ..., 0 against the paging policy\"".into());
    }
    Ok(())
}

/// [`Check::LguestHaltsAgree`]: the host's count of HALT hypercalls is at
/// least the sum of the `N halts` the guest's `time:` lines report (the
/// rest are the idle task's), and the sleep's is not 0.
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
        Some(_) if guest > host => {
            Err(format!("the host counted {host} HALTs, the guest's time: lines report {guest} halts"))
        }
        Some(_) => Ok(()),
    }
}

/// The number right before `word` on the log's line starting with
/// `prefix` ("..., 281 evictions;": 281).
fn count_before(log: &str, prefix: &str, word: &str) -> Option<u64> {
    let line = log.lines().find(|l| l.starts_with(prefix))?;
    let at = line.find(word)?;
    line[..at].rsplit(' ').next()?.parse().ok()
}

/// [`Check::LguestAuditAcrossEvictions`]: the host evicted shadow pgdirs,
/// and its audit (of each as it went, and of those kept) found nothing
/// stale.
fn lguest_audit_across_evictions(log: &str) -> Result<(), String> {
    let evictions = count_before(log, "lguest-host: shadow tables: ", " evictions")
        .ok_or("log lacks the host's \"lguest-host: shadow tables: ..., N evictions\"")?;
    let violations = count_before(log, "lguest-host: audit: ", " violations")
        .ok_or("log lacks the host's \"lguest-host: audit: ...: N violations\"")?;
    match (evictions, violations) {
        (0, _) => Err("the lguest host evicted no shadow pgdir: the audit saw no eviction".into()),
        (_, 0) => Ok(()),
        (_, v) => Err(format!("the lguest host's audit found {v} violations")),
    }
}

/// A matrix row's line in the report.
fn matrix_entry(c: &BootCase, r: Run) -> Entry {
    Entry {
        group: "matrix",
        name: c.name.to_string(),
        env: c.env.name(),
        cpu: c.cpu.to_string(),
        mem: c.mem.to_string(),
        result: r.outcome.word().to_string(),
        backend: field(&r.log, "backend: ").unwrap_or("-").to_string(),
        paging: field(&r.log, "paging: ").unwrap_or("-").to_string(),
        seconds: r.elapsed.as_secs_f64(),
        verdict: verify(c, &r),
        log: r.log,
    }
}

/// The boots the gdb sessions debug: the default image, as `cargo xtask
/// gdb` builds it.
fn prepare_gdb(sessions: &[GdbCase]) -> Result<Vec<Boot>, String> {
    if sessions.is_empty() {
        return Ok(Vec::new());
    }
    tools::ensure_gdb()?;
    let kernel = build::image("kernel", &build::Opts::default())?;
    sessions
        .iter()
        .map(|g| {
            let mut b = boot_for(&pvops_tests::matrix()[0], kernel.clone(), None, tools::hypervisor(g.env)?);
            b.env = g.env;
            b.cpu = g.cpu.into();
            b.mem = g.mem.into();
            b.append = g.append.into();
            b.timeout = if g.env.uses_xen() { XEN_TIMEOUT } else { BOOT_TIMEOUT };
            Ok(b)
        })
        .collect()
}

/// A gdb session in batch mode; its log is gdb's output, then the serial
/// log. The session's own verdict is gdb's exit status.
fn gdb_run(g: &GdbCase, b: &Boot) -> Run {
    let commands: Vec<String> = g.commands.iter().map(|c| c.to_string()).collect();
    match gdb::session(g.name, b.clone(), &commands, true) {
        Ok(s) => Run {
            outcome: if s.gdb_ok {
                Outcome::Done(ExitStatus::Success, String::new())
            } else {
                Outcome::Crash("gdb exited with an error".into())
            },
            log: format!("{GDB_HEADER}{}{SERIAL_HEADER}{}", s.gdb, s.serial),
            elapsed: s.elapsed,
        },
        Err(e) => Run { outcome: Outcome::Crash(e), log: String::new(), elapsed: Duration::ZERO },
    }
}

const GDB_HEADER: &str = "--- gdb ---\n";
const SERIAL_HEADER: &str = "--- serial log ---\n";

/// Does gdb's output show what the session must?
fn verify_gdb(g: &GdbCase, r: &Run) -> Result<(), String> {
    if !r.outcome.is_success() {
        return Err(format!("the session failed: {:?}", r.outcome));
    }
    let out = r.log.split(SERIAL_HEADER).next().unwrap_or("");
    if let Some(missing) = g.expect.iter().find(|e| !out.contains(*e)) {
        return Err(format!("gdb's output lacks {missing:?}"));
    }
    if let Some(bad) = gdb_rows_::NEVER.iter().find(|n| out.contains(*n)) {
        return Err(format!("gdb's output shows {bad:?}"));
    }
    Ok(())
}

fn gdb_entry(g: &GdbCase, r: Run) -> Entry {
    Entry {
        group: "gdb",
        name: g.name.to_string(),
        env: g.env.name(),
        cpu: g.cpu.to_string(),
        mem: g.mem.to_string(),
        result: if r.outcome.is_success() { "gdb ok".into() } else { "gdb fail".into() },
        backend: "-".into(),
        paging: "-".into(),
        seconds: r.elapsed.as_secs_f64(),
        verdict: verify_gdb(g, &r),
        log: r.log,
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
        let idle_halts_too = LOG.replace("halted 168", "halted 171");
        assert_eq!(lguest_halts_agree(&idle_halts_too), Ok(()), "the idle task's, uncounted by the guest");
        assert!(lguest_halts_agree(&LOG.replace("lguest-host: guest halted", "x")).is_err());
        assert!(lguest_halts_agree(&LOG.replace("time: sleep", "x")).is_err());
        let no_sleep_halts = LOG.replace("51 halts", "0 halts").replace("halted 168", "halted 117");
        assert!(lguest_halts_agree(&no_sleep_halts).unwrap_err().contains("never halted"));
    }

    const HIGH: &str = "layout: lowmem 891 MiB (max_low_pfn 0x37bfe), highmem 131 MiB, fixmap 0xfffdf000-0xfffff000, pkmap 0xffc00000
proccheck: 152 user pte pages in high memory, 152 mapped writable by kmap_atomic_pte, 0 against the paging policy (pagetable pages writable)
highmem: 584 user pte pages in high memory (kmap_atomic_pte), 12 kmaps through 12 pkmap slots (0 flushes), 135048 KiB of high memory
";

    #[test]
    fn highmem_used_wants_high_pte_pages_and_kmaps_exactly_when_there_is_high_memory() {
        assert_eq!(highmem_used(HIGH), Ok(()));
        let no_ptes = HIGH.replace("584 user pte", "0 user pte");
        assert!(highmem_used(&no_ptes).unwrap_err().contains("0 pte pages"));
        assert!(highmem_used(&HIGH.replace("12 kmaps", "0 kmaps")).unwrap_err().contains("0 kmaps"));
        let low = HIGH.replace("highmem 131 MiB", "highmem 0 MiB").replace("135048 KiB", "0 KiB");
        assert!(highmem_used(&low).unwrap_err().contains("no high memory"));
        let low = low.replace("584 user pte", "0 user pte").replace("12 kmaps", "0 kmaps");
        assert_eq!(highmem_used(&low), Ok(()));
        assert!(highmem_used(&HIGH.replace("135048 KiB", "0 KiB")).unwrap_err().contains("no high memory"));
        let more = HIGH.replace("highmem 131 MiB", "highmem 100 MiB");
        assert!(highmem_used(&more).unwrap_err().contains("the layout only 100 MiB"));
        // RAM above 4 GiB only (mbloader-cross-4g): reported, never used.
        let above_4g = low.replace("highmem 0 MiB", "highmem 1024 MiB");
        assert_eq!(highmem_used(&above_4g), Ok(()));
        let wrong = HIGH.replace(", 0 against", ", 2 against");
        assert!(highmem_used(&wrong).unwrap_err().contains("paging policy"));
        assert!(highmem_used(&HIGH.replace("highmem: ", "x")).is_err());
    }

    const AUDIT: &str = "lguest-host: shadow tables: 71182 SET_PTE entries applied, 785 pgd entries dropped by SET_PMD, 1 full and 0 user flushes, 377 pgdir switches, 281 evictions; 7 of 1024 pool pages in use (peak 29), 0 pool resets
lguest-host: audit: 30757 shadow ptes in 281 shadow pgdirs at their eviction and 142 in the 4 kept at the end checked against the guest's pagetables: 0 violations
";

    #[test]
    fn lguest_audit_across_evictions_wants_evictions_and_no_violation() {
        assert_eq!(lguest_audit_across_evictions(AUDIT), Ok(()));
        let none_evicted = AUDIT.replace(" 281 evictions", " 0 evictions");
        assert!(lguest_audit_across_evictions(&none_evicted).unwrap_err().contains("no shadow pgdir"));
        let stale = AUDIT.replace(": 0 violations", ": 3 violations");
        assert!(lguest_audit_across_evictions(&stale).unwrap_err().contains("3 violations"));
        assert!(lguest_audit_across_evictions(&AUDIT.replace("lguest-host: audit:", "x")).is_err());
    }
}
