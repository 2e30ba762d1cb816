//! `cargo xtask fuzz [--seconds N] [--jobs J] [--save-corpus] [TARGET...]`:
//! libFuzzer over every parser of outside input (`fuzz/`, bodies in
//! `tests/fuzz-targets`), then one table of what each run did.
//!
//! The repo's corpus (`fuzz/corpus/TARGET`) seeds a working corpus under
//! `target/fuzz/corpus/TARGET`, where libFuzzer writes what it finds, so a
//! run never dirties the tree; `--save-corpus` merges the working corpus
//! back into the repo's, minimized (libFuzzer's `-merge=1`, what `cargo fuzz
//! cmin` runs). A crash leaves its input under `target/fuzz/artifacts/TARGET`;
//! it becomes a regression by moving it to `fuzz/regressions/TARGET/`, named
//! for what it was, where plain `cargo test` replays it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use crate::{build, toolchain, tools, EXIT_SETUP};

/// The cargo-fuzz xtask installs when missing.
const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// The host triple cargo-fuzz builds for (libFuzzer runs on the host).
const HOST: &str = "x86_64-unknown-linux-gnu";
/// An input that runs longer than this is a finding: every parser here is
/// bounded by its input, so a hang is a loop that should not be.
const INPUT_TIMEOUT_SECS: u32 = 10;

pub struct Opts {
    pub seconds: u32,
    pub jobs: usize,
    pub save_corpus: bool,
    pub targets: Vec<String>,
}

/// What one target's run did, from libFuzzer's own lines.
pub struct Outcome {
    pub target: String,
    pub seconds: f64,
    pub execs: u64,
    pub cov: u64,
    pub features: u64,
    pub corpus: u64,
    pub crashes: Vec<PathBuf>,
    /// Exited without a crash artifact and without finishing (a build or
    /// libFuzzer set-up problem); the log says what.
    pub broken: Option<String>,
}

impl Outcome {
    /// Nothing run yet.
    fn new(target: &str) -> Outcome {
        Outcome {
            target: target.to_string(),
            seconds: 0.0,
            execs: 0,
            cov: 0,
            features: 0,
            corpus: 0,
            crashes: Vec::new(),
            broken: None,
        }
    }
}

pub fn main(args: &[String]) -> u8 {
    let opts = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("xtask fuzz: {e}");
            return EXIT_SETUP;
        }
    };
    match run(&opts) {
        Ok(outcomes) => {
            print_table(&outcomes);
            if opts.save_corpus {
                if let Err(e) = save_corpus(&opts.targets) {
                    eprintln!("xtask fuzz: {e}");
                    return EXIT_SETUP;
                }
            }
            u8::from(outcomes.iter().any(|o| !o.crashes.is_empty() || o.broken.is_some()))
        }
        Err(e) => {
            eprintln!("xtask fuzz: {e}");
            EXIT_SETUP
        }
    }
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts { seconds: 60, jobs: 1, save_corpus: false, targets: Vec::new() };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |what: &str| -> Result<u64, String> {
            let v = it.next().ok_or(format!("{what} takes a number"))?;
            v.parse().map_err(|_| format!("{what} {v}: not a number"))
        };
        match a.as_str() {
            "--seconds" => o.seconds = num("--seconds")?.max(1) as u32,
            "--jobs" => o.jobs = num("--jobs")?.max(1) as usize,
            "--save-corpus" => o.save_corpus = true,
            t if !t.starts_with('-') => o.targets.push(t.to_string()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    let all = targets();
    if let Some(bad) = o.targets.iter().find(|t| !all.contains(t)) {
        return Err(format!("no target {bad}; targets: {}", all.join(" ")));
    }
    if o.targets.is_empty() {
        o.targets = all;
    }
    Ok(o)
}

/// The targets: one file each under fuzz/fuzz_targets.
pub fn targets() -> Vec<String> {
    let dir = build::root().join("fuzz/fuzz_targets");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".rs").map(String::from)).collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn work(what: &str, target: &str) -> PathBuf {
    build::root().join("target/fuzz").join(what).join(target)
}

/// Builds every target and runs `opts.targets`, up to `opts.jobs` at once.
pub fn run(opts: &Opts) -> Result<Vec<Outcome>, String> {
    ensure_cargo_fuzz()?;
    ensure_cxx()?;
    let root = build::root();
    let target_dir = root.join("target/fuzz/build");
    println!("xtask: building {} fuzz targets (cargo fuzz build)", opts.targets.len());
    let ok = toolchain::cargo()?
        .current_dir(root.join("fuzz"))
        .args(["fuzz", "build", "--target-dir"])
        .arg(&target_dir)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return Err("cargo fuzz build failed".into());
    }
    let bin_dir = target_dir.join(HOST).join("release");
    let queue = Mutex::new(opts.targets.iter());
    let results = Mutex::new(Vec::new());
    println!(
        "xtask: fuzzing {} targets for {} s each, {} at a time",
        opts.targets.len(),
        opts.seconds,
        opts.jobs
    );
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.min(opts.targets.len()) {
            s.spawn(|| loop {
                let Some(t) = queue.lock().unwrap().next() else { break };
                let o = fuzz_one(&bin_dir.join(t), t, opts.seconds);
                println!("xtask: fuzz {t}: {} executions, {} crashes", o.execs, o.crashes.len());
                results.lock().unwrap().push(o);
            });
        }
    });
    let mut v = results.into_inner().unwrap();
    v.sort_by(|a, b| a.target.cmp(&b.target));
    Ok(v)
}

/// One libFuzzer run of `target` for `seconds`; its log goes to
/// target/fuzz/logs/TARGET.log as it runs.
fn fuzz_one(bin: &Path, target: &str, seconds: u32) -> Outcome {
    let corpus = work("corpus", target);
    let artifacts = work("artifacts", target);
    let log_path = build::root().join("target/fuzz/logs").join(format!("{target}.log"));
    let mut out = Outcome::new(target);
    // libFuzzer refuses a corpus directory that does not exist (a new
    // target has none in the repo yet).
    let repo_corpus = build::root().join("fuzz/corpus").join(target);
    for d in [&corpus, &repo_corpus, &artifacts, &log_path.parent().unwrap().to_path_buf()] {
        let _ = std::fs::create_dir_all(d);
    }
    let before = list(&artifacts);
    let start = Instant::now();
    // New inputs go to the first corpus directory, the working one; the
    // repo's is read only.
    // libFuzzer's output goes straight to the log, so a long run can be
    // followed there (`tail -f`) while it runs.
    let log_file = match std::fs::File::create(&log_path) {
        Ok(f) => f,
        Err(e) => {
            out.broken = Some(format!("{}: {e}", log_path.display()));
            return out;
        }
    };
    let run = Command::new(bin)
        .arg(&corpus)
        .arg(&repo_corpus)
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-timeout={INPUT_TIMEOUT_SECS}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .stdout(std::process::Stdio::null())
        .stderr(log_file)
        .status();
    out.seconds = start.elapsed().as_secs_f64();
    let status = match run {
        Ok(s) => s,
        Err(e) => {
            out.broken = Some(format!("{}: {e}", bin.display()));
            return out;
        }
    };
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    read_stats(&log, &mut out);
    out.crashes = list(&artifacts).into_iter().filter(|p| !before.contains(p)).collect();
    if !status.success() && out.crashes.is_empty() {
        out.broken = Some(format!("libFuzzer exited with {status}, see {}", log_path.display()));
    }
    out
}

/// libFuzzer's status lines: `#1234 ... cov: 56 ft: 78 corp: 9/100b ...`
/// (the last one counts) and `stat::number_of_executed_units: N`.
fn read_stats(log: &str, out: &mut Outcome) {
    let field = |line: &str, key: &str| -> Option<u64> {
        let rest = line.split(key).nth(1)?;
        let num: String = rest.trim_start().chars().take_while(|c| c.is_ascii_digit()).collect();
        num.parse().ok()
    };
    for line in log.lines() {
        if line.starts_with('#') && line.contains("cov: ") {
            out.cov = field(line, "cov:").unwrap_or(out.cov);
            out.features = field(line, "ft:").unwrap_or(out.features);
            out.corpus = field(line, "corp:").unwrap_or(out.corpus);
            out.execs = field(line, "#").unwrap_or(out.execs);
        }
        if let Some(n) = field(line, "stat::number_of_executed_units:") {
            out.execs = n;
        }
    }
}

fn list(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect()).unwrap_or_default();
    v.sort();
    v
}

pub fn print_table(outcomes: &[Outcome]) {
    println!();
    println!(
        "{:<16} {:>7} {:>12} {:>6} {:>8} {:>7} {:>7}",
        "target", "seconds", "executions", "cov", "features", "corpus", "crashes"
    );
    for o in outcomes {
        println!(
            "{:<16} {:>7.1} {:>12} {:>6} {:>8} {:>7} {:>7}",
            o.target,
            o.seconds,
            o.execs,
            o.cov,
            o.features,
            o.corpus,
            o.crashes.len()
        );
        for c in &o.crashes {
            println!("  crash: {}", c.display());
        }
        if let Some(b) = &o.broken {
            println!("  broken: {b}");
        }
    }
    if outcomes.iter().any(|o| !o.crashes.is_empty()) {
        println!("\na crash: fix the parser, then move the input to fuzz/regressions/TARGET/NAME (cargo test replays it)");
    }
}

/// Merges each target's working corpus into the repo's, keeping only
/// inputs that add coverage (libFuzzer's `-merge=1` into an empty
/// directory, as `cargo fuzz cmin` does), and the hand-made seeds by name.
fn save_corpus(targets: &[String]) -> Result<(), String> {
    let root = build::root();
    let bin_dir = root.join("target/fuzz/build").join(HOST).join("release");
    for t in targets {
        let repo = root.join("fuzz/corpus").join(t);
        let merged = work("merged", t);
        let _ = std::fs::remove_dir_all(&merged);
        std::fs::create_dir_all(&merged).map_err(|e| e.to_string())?;
        let ok = Command::new(bin_dir.join(t))
            .arg("-merge=1")
            .arg(&merged)
            .arg(&repo)
            .arg(work("corpus", t))
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            return Err(format!("merging {t}'s corpus failed"));
        }
        let seeds: Vec<Vec<u8>> = list(&repo)
            .iter()
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("seed-")))
            .filter_map(|p| std::fs::read(p).ok())
            .collect();
        for p in list(&repo) {
            if !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("seed-")) {
                std::fs::remove_file(&p).map_err(|e| e.to_string())?;
            }
        }
        let mut kept = 0;
        for p in list(&merged) {
            let data = std::fs::read(&p).map_err(|e| e.to_string())?;
            if !seeds.contains(&data) {
                std::fs::copy(&p, repo.join(p.file_name().unwrap())).map_err(|e| e.to_string())?;
                kept += 1;
            }
        }
        println!("xtask: fuzz/corpus/{t}: {} seeds and {kept} inputs found", seeds.len());
    }
    Ok(())
}

/// cargo-fuzz: present, or installed now with a line saying so.
fn ensure_cargo_fuzz() -> Result<(), String> {
    let present = || {
        toolchain::cargo()
            .is_ok_and(|mut c| c.args(["fuzz", "--version"]).output().is_ok_and(|o| o.status.success()))
    };
    if present() {
        return Ok(());
    }
    println!(
        "xtask: cargo-fuzz is not installed: installing cargo-fuzz {CARGO_FUZZ_VERSION} (cargo install) ..."
    );
    let ok = toolchain::cargo()?
        .args(["install", "cargo-fuzz", "--locked", "--version", CARGO_FUZZ_VERSION])
        .status()
        .is_ok_and(|s| s.success());
    if ok && present() {
        Ok(())
    } else {
        Err(format!("installing cargo-fuzz failed; try: cargo install cargo-fuzz --locked --version {CARGO_FUZZ_VERSION}"))
    }
}

/// libFuzzer's runtime is C++, which libfuzzer-sys compiles.
fn ensure_cxx() -> Result<(), String> {
    tools::ensure_apt_tool("g++", &["--version"], "g++")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_come_from_the_last_status_line_and_the_final_stats() {
        let log = "INFO: Seed: 1\n\
            #2\tINITED cov: 10 ft: 12 corp: 1/4b exec/s: 0 rss: 30Mb\n\
            #4096\tpulse  cov: 56 ft: 78 corp: 9/100b lim: 4 exec/s: 2048 rss: 31Mb\n\
            #5000\tDONE   cov: 57 ft: 80 corp: 10/120b lim: 4 exec/s: 2500 rss: 31Mb\n\
            stat::number_of_executed_units: 5003\n";
        let mut o = Outcome::new("t");
        read_stats(log, &mut o);
        assert_eq!((o.execs, o.cov, o.features, o.corpus), (5003, 57, 80, 10));
    }
}
