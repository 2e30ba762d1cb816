//! One boot: the QEMU command line for an environment, a timeout, the
//! serial log, and the verdict.
//!
//! A run is judged XTF's way: by the single `Test result:` line, checked
//! against the exit status the kernel asked for (isa-debug-exit). No result
//! line is a crash (a triple fault or reboot ends QEMU with status 0 and no
//! line); two result lines, or a status that contradicts the line, is a
//! crash too.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pvops_tests::Env;

/// What to boot and how.
#[derive(Clone, Debug)]
pub struct Boot {
    pub env: Env,
    pub kernel: PathBuf,
    /// The test loader, for `Env::BadBootInfo`.
    pub loader: Option<PathBuf>,
    /// The hypervisor image, for `Env::Xen` and `Env::XenPvh`; the lguest
    /// host, for `Env::Lguest`.
    pub hypervisor: Option<PathBuf>,
    pub cpu: String,
    pub mem: String,
    pub append: String,
    pub accel: String,
    pub gdb: bool,
    /// `-icount shift=0`: one virtual nanosecond, and one TSC tick, per
    /// guest instruction (deterministic counts for the benchmarks).
    pub icount: bool,
    pub timeout: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure(String),
    Error(String),
    Crash(String),
    Timeout,
}

impl Outcome {
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Failure(_) => 1,
            Outcome::Error(_) => 2,
            Outcome::Crash(_) => 3,
            Outcome::Timeout => 4,
        }
    }
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Success => "SUCCESS",
            Outcome::Failure(_) => "FAILURE",
            Outcome::Error(_) => "ERROR",
            Outcome::Crash(_) => "CRASH",
            Outcome::Timeout => "TIMEOUT",
        }
    }
}

pub struct Run {
    pub outcome: Outcome,
    /// Serial log, then QEMU's own stderr.
    pub log: String,
    pub elapsed: Duration,
}

/// QEMU exit statuses the kernel's isa-debug-exit values produce:
/// (value << 1) | 1.
const STATUS_SUCCESS: i32 = 0x21;
const STATUS_FAILURE: i32 = 0x23;
const STATUS_ERROR: i32 = 0x25;

/// Memory QEMU gets beyond dom0's: Xen's own heap and frame table.
const XEN_OVERHEAD_MIB: u64 = 512;

/// "128M", "1G", "512" (MiB) -> MiB.
pub fn mib(size: &str) -> Option<u64> {
    let s = size.trim();
    let (num, mult) = match s.chars().last()? {
        'G' | 'g' => (&s[..s.len() - 1], 1024),
        'M' | 'm' => (&s[..s.len() - 1], 1),
        _ => (s, 1),
    };
    num.parse::<u64>().ok().map(|n| n * mult)
}

/// A multiboot module string: "file cmdline". A comma would split
/// modules, so QEMU wants it doubled.
fn module(b: &Boot) -> String {
    format!("{} {}", b.kernel.display(), b.append).replace(',', ",,")
}

/// Memory QEMU gets beyond the lguest guest's: the host, its shadow pool.
const LGUEST_OVERHEAD_MIB: u64 = 192;

fn qemu(b: &Boot) -> Command {
    let mut c = match b.env {
        Env::Xen | Env::XenPvh => return qemu_xen(b),
        Env::Lguest => return qemu_lguest(b),
        _ => Command::new("qemu-system-i386"),
    };
    c.args(["-accel", &b.accel, "-cpu", &b.cpu, "-m", &b.mem]);
    if let Env::BadBootInfo(scenario) = b.env {
        c.arg("-kernel").arg(b.loader.as_ref().expect("BadBootInfo needs the loader"));
        c.args(["-append", &format!("scenario={scenario}"), "-initrd", &module(b)]);
    } else {
        c.arg("-kernel").arg(&b.kernel);
        if !b.append.is_empty() {
            c.args(["-append", &b.append]);
        }
    }
    common_args(&mut c, b);
    c
}

/// Xen (64-bit) in QEMU; the kernel is its first module, i.e. dom0.
fn qemu_xen(b: &Boot) -> Command {
    let dom0 = mib(&b.mem).unwrap_or(128);
    let mut c = Command::new("qemu-system-x86_64");
    c.args(["-accel", &b.accel, "-M", "pc", "-cpu", &b.cpu]);
    c.args(["-m", &format!("{}M", dom0 + XEN_OVERHEAD_MIB)]);
    c.arg("-kernel").arg(b.hypervisor.as_ref().expect("Xen environments need the hypervisor"));
    let mut xen =
        format!("console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all dom0_mem={dom0}M,max:{dom0}M");
    if b.env == Env::XenPvh {
        // PVH dom0 needs the CPU's nested paging (-cpu max offers SVM+NPT);
        // without an IOMMU in the machine, Xen must be told not to want one.
        xen.push_str(" dom0=pvh dom0-iommu=none");
    }
    c.args(["-append", &xen]);
    c.args(["-initrd", &module(b)]);
    common_args(&mut c, b);

    c
}

/// The lguest host in QEMU; the kernel is its guest (a multiboot module).
fn qemu_lguest(b: &Boot) -> Command {
    let guest = mib(&b.mem).unwrap_or(128);
    let mut c = Command::new("qemu-system-i386");
    c.args(["-accel", &b.accel, "-cpu", &b.cpu, "-m", &format!("{}M", guest + LGUEST_OVERHEAD_MIB)]);
    c.arg("-kernel").arg(b.hypervisor.as_ref().expect("Env::Lguest needs the lguest host"));
    c.args(["-append", &format!("mem={guest}M"), "-initrd", &module(b)]);
    common_args(&mut c, b);
    c
}

fn common_args(c: &mut Command, b: &Boot) {
    if b.icount {
        c.args(["-icount", "shift=0"]);
    }
    c.args([
        "-display",
        "none",
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-no-reboot",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=0x04",
    ]);
    if b.gdb {
        c.args(["-s", "-S"]);
    }
}

/// Boots `b`; with `stream`, echoes the serial log as it arrives.
pub fn run(b: &Boot, stream: bool) -> Run {
    let start = Instant::now();
    let mut cmd = qemu(b);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if b.gdb {
        println!("xtask: QEMU waits for gdb: target remote :1234");
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Run {
                outcome: Outcome::Error(format!("cannot start qemu-system-i386: {e}")),
                log: String::new(),
                elapsed: start.elapsed(),
            }
        }
    };
    let log = Arc::new(Mutex::new(String::new()));
    let stdout = child.stdout.take().unwrap();
    let reader = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
                let line = String::from_utf8_lossy(&line).trim_end_matches('\r').to_string();
                if stream {
                    println!("{line}");
                }
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        })
    };
    let mut stderr = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut timed_out = false;
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break Some(s);
        }
        if !b.gdb && start.elapsed() > b.timeout {
            let _ = child.kill();
            timed_out = true;
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = reader.join();
    let stderr = err_reader.join().unwrap_or_default();
    let mut log = Arc::try_unwrap(log).unwrap().into_inner().unwrap();
    if !stderr.trim().is_empty() {
        log.push_str("--- qemu stderr ---\n");
        log.push_str(&stderr);
    }
    let code = status.and_then(|s| s.code());
    let outcome = if timed_out { Outcome::Timeout } else { judge(&log, code) };
    Run { outcome, log, elapsed: start.elapsed() }
}

/// The verdict from the log's result line and QEMU's exit status.
pub fn judge(log: &str, status: Option<i32>) -> Outcome {
    let results: Vec<&str> = log
        .lines()
        .filter_map(|l| l.find("Test result: ").map(|i| &l[i + "Test result: ".len()..]))
        .collect();
    let line = match results.as_slice() {
        [] => return Outcome::Crash(format!("no result line (QEMU exit status {status:?})")),
        [one] => *one,
        _ => return Outcome::Crash(format!("{} result lines", results.len())),
    };
    let (word, why) = line.split_once(": ").unwrap_or((line, ""));
    let (outcome, expected) = match word.trim() {
        "SUCCESS" => (Outcome::Success, STATUS_SUCCESS),
        "FAILURE" => (Outcome::Failure(why.to_string()), STATUS_FAILURE),
        "ERROR" => (Outcome::Error(why.to_string()), STATUS_ERROR),
        other => return Outcome::Crash(format!("unknown result {other:?}")),
    };
    if status == Some(expected) {
        return outcome;
    }
    // A status more severe than the line: whoever ran the kernel (the
    // lguest host's audit) found something the kernel could not. The
    // status wins; its reason is the log's "violation" line, if any.
    let severe = match status {
        Some(STATUS_FAILURE) => Some(Outcome::Failure as fn(String) -> Outcome),
        Some(STATUS_ERROR) => Some(Outcome::Error as fn(String) -> Outcome),
        _ => None,
    };
    match severe {
        Some(make) if outcome == Outcome::Success => {
            let why = log.lines().find(|l| l.contains("violation")).unwrap_or("no reason given");
            make(format!("the result line says SUCCESS but the exit status says otherwise: {why}"))
        }
        _ => Outcome::Crash(format!(
            "result line says {} but QEMU exit status is {status:?} (expected {expected})",
            word.trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judging() {
        assert_eq!(judge("a\nTest result: SUCCESS\n", Some(0x21)), Outcome::Success);
        assert_eq!(judge("Test result: FAILURE: bad map\n", Some(0x23)), Outcome::Failure("bad map".into()));
        assert!(matches!(judge("booting\n", Some(0)), Outcome::Crash(_)));
        assert!(matches!(judge("Test result: SUCCESS\n", Some(0)), Outcome::Crash(_)));
        assert!(matches!(
            judge("Test result: SUCCESS\nTest result: SUCCESS\n", Some(0x21)),
            Outcome::Crash(_)
        ));
        assert!(matches!(judge("Test result: SKIP\n", Some(0x21)), Outcome::Crash(_)));
        // A host that overrules a guest's SUCCESS.
        assert_eq!(
            judge("Test result: SUCCESS\nhost: violation: stale\n", Some(0x23)),
            Outcome::Failure(
                "the result line says SUCCESS but the exit status says otherwise: host: violation: stale"
                    .into()
            )
        );
    }
}
