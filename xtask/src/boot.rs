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

use paravirt::ExitStatus;
use pvops_tests::Env;

use crate::domu::{self, Dom0};

/// What to boot and how.
#[derive(Clone, Debug)]
pub struct Boot {
    pub env: Env,
    pub kernel: PathBuf,
    /// The test loader, for `Env::BadBootInfo`.
    pub loader: Option<PathBuf>,
    /// The hypervisor image, for the Xen environments; the lguest host, for
    /// `Env::Lguest`.
    pub hypervisor: Option<PathBuf>,
    /// For the domU environments: the Linux dom0 and its guests (the kernel
    /// runs as those guests; `kernel`, `mem` and `append` are the first's).
    pub dom0: Option<Dom0>,
    pub cpu: String,
    pub mem: String,
    pub append: String,
    pub accel: String,
    /// QEMU's gdb server (`-gdb DEV`, e.g. `tcp::1234`), the machine
    /// stopped until gdb continues it; no timeout then.
    pub gdb: Option<String>,
    /// `-icount shift=0`: one virtual nanosecond, and one TSC tick, per
    /// guest instruction (deterministic counts for the benchmarks).
    pub icount: bool,
    pub timeout: Duration,
}

/// How a boot ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// One result line, and the exit status it asked for: the kernel's
    /// verdict (with its reason, empty for SUCCESS).
    Done(ExitStatus, String),
    /// No result line, several, or an exit status that contradicts it.
    Crash(String),
    Timeout,
}

/// `cargo xtask run` and `test` exit statuses (README: "exit statuses").
pub mod exit {
    pub const SUCCESS: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const ERROR: u8 = 2;
    pub const CRASH: u8 = 3;
    pub const TIMEOUT: u8 = 4;
    /// Could not set up: build failed, tool missing, bad arguments.
    pub const SETUP: u8 = 5;
    pub const SKIP: u8 = 6;
}

impl Outcome {
    #[cfg(test)]
    pub const SUCCESS: Outcome = Outcome::Done(ExitStatus::Success, String::new());

    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Done(ExitStatus::Success, _) => exit::SUCCESS,
            Outcome::Done(ExitStatus::Failure, _) => exit::FAILURE,
            Outcome::Done(ExitStatus::Error, _) => exit::ERROR,
            Outcome::Done(ExitStatus::Skip, _) => exit::SKIP,
            Outcome::Crash(_) => exit::CRASH,
            Outcome::Timeout => exit::TIMEOUT,
        }
    }
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Done(s, _) => s.word(),
            Outcome::Crash(_) => "CRASH",
            Outcome::Timeout => "TIMEOUT",
        }
    }
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Done(ExitStatus::Success, _))
    }
}

pub struct Run {
    pub outcome: Outcome,
    /// Serial log, then QEMU's own stderr.
    pub log: String,
    pub elapsed: Duration,
}

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

/// The QEMU binary an environment runs in.
pub fn qemu_binary(env: Env) -> &'static str {
    if env.uses_xen() {
        "qemu-system-x86_64"
    } else {
        "qemu-system-i386"
    }
}

/// The QEMU command line that boots `b`.
pub fn qemu(b: &Boot) -> Command {
    let mut c = match b.env {
        Env::Xen | Env::XenPvh => return qemu_xen(b),
        Env::XenDomu | Env::XenPvhDomu => return qemu_xen_domu(b),
        Env::Lguest | Env::LguestLie(_) => return qemu_lguest(b),
        _ => Command::new(qemu_binary(b.env)),
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
    let mut c = Command::new(qemu_binary(b.env));
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

/// Xen in QEMU with a Linux dom0 (its first module; the initramfs holding
/// dom0's toolstack and the guests is the second), which runs the kernel as
/// its guests with `xl create`.
fn qemu_xen_domu(b: &Boot) -> Command {
    let d = b.dom0.as_ref().expect("domU environments need dom0");
    let mut c = Command::new(qemu_binary(b.env));
    // One CPU for dom0 and the guest: a second one costs dom0's boot 1.3 s
    // under TCG. A PVH guest needs SVM with nested paging (-cpu max).
    c.args(["-accel", &b.accel, "-M", "pc", "-cpu", &b.cpu, "-smp", "1", "-nodefaults"]);
    c.args(["-m", &format!("{}M", d.qemu_mem_mib())]);
    c.arg("-kernel").arg(b.hypervisor.as_ref().expect("Xen environments need the hypervisor"));
    let m = domu::DOM0_MEM_MIB;
    c.args([
        "-append",
        &format!(
            "console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all dom0_mem={m}M,max:{m}M dom0_max_vcpus=1"
        ),
    ]);
    let linux = format!("{} {}", d.vmlinux.display(), domu::DOM0_CMDLINE).replace(',', ",,");
    c.args(["-initrd", &format!("{linux},{}", d.initrd.display())]);
    common_args(&mut c, b);
    c
}

/// The lguest host in QEMU; the kernel is its guest (a multiboot module).
fn qemu_lguest(b: &Boot) -> Command {
    let guest = mib(&b.mem).unwrap_or(128);
    let mut c = Command::new(qemu_binary(b.env));
    c.args(["-accel", &b.accel, "-cpu", &b.cpu, "-m", &format!("{}M", guest + LGUEST_OVERHEAD_MIB)]);
    c.arg("-kernel").arg(b.hypervisor.as_ref().expect("Env::Lguest needs the lguest host"));
    let lie = match b.env {
        Env::LguestLie(lie) => format!(" lie={lie}"),
        _ => String::new(),
    };
    c.args(["-append", &format!("mem={guest}M{lie}"), "-initrd", &module(b)]);
    common_args(&mut c, b);
    c
}

fn common_args(c: &mut Command, b: &Boot) {
    if b.icount {
        c.args(["-icount", "shift=0,sleep=off"]);
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
    if let Some(dev) = &b.gdb {
        c.args(["-gdb", dev, "-S"]);
    }
}

/// Boots `b`; with `stream`, echoes the serial log as it arrives.
pub fn run(b: &Boot, stream: bool) -> Run {
    let start = Instant::now();
    let mut cmd = qemu(b);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let (Some(dev), true) = (&b.gdb, stream) {
        println!("xtask: QEMU waits for gdb on {dev}: target remote {}", dev.trim_start_matches("tcp:"));
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Run {
                outcome: Outcome::Crash(format!("cannot start {}: {e}", qemu_binary(b.env))),
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
        if b.gdb.is_none() && start.elapsed() > b.timeout {
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
    let outcome = if timed_out {
        Outcome::Timeout
    } else if b.dom0.is_some() {
        // dom0's own verdict; each guest's comes from domu::finish.
        domu::judge::dom0_outcome(&log, code)
    } else {
        judge(&log, code)
    };
    Run { outcome, log, elapsed: start.elapsed() }
}

/// The verdict from the log's result line and QEMU's exit status (the
/// status the kernel, or the lguest host, wrote to isa-debug-exit; both
/// come from one definition, `paravirt::ExitStatus`).
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
    let Some(said) = ExitStatus::from_word(word.trim()) else {
        return Outcome::Crash(format!("unknown result {:?}", word.trim()));
    };
    let exited = status.and_then(ExitStatus::from_qemu_status);
    match exited {
        Some(s) if s == said => Outcome::Done(said, why.to_string()),
        // A status more severe than the line: whoever ran the kernel (the
        // lguest host's audit) found something the kernel could not. The
        // status wins; its reason is the log's "violation" line, if any.
        Some(s) if s > said && said == ExitStatus::Success => {
            let why = log.lines().find(|l| l.contains("violation")).unwrap_or("no reason given");
            Outcome::Done(
                s,
                format!("the result line says SUCCESS but the exit status says otherwise: {why}"),
            )
        }
        _ => Outcome::Crash(format!(
            "result line says {} but QEMU exit status is {status:?} (expected {})",
            said.word(),
            said.qemu_status()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judging() {
        assert_eq!(judge("a\nTest result: SUCCESS\n", Some(0x21)), Outcome::SUCCESS);
        assert_eq!(
            judge("Test result: FAILURE: bad map\n", Some(0x23)),
            Outcome::Done(ExitStatus::Failure, "bad map".into())
        );
        assert_eq!(
            judge("Test result: SKIP: no backend\n", Some(0x27)),
            Outcome::Done(ExitStatus::Skip, "no backend".into())
        );
        assert!(matches!(judge("booting\n", Some(0)), Outcome::Crash(_)));
        assert!(matches!(judge("Test result: SUCCESS\n", Some(0)), Outcome::Crash(_)));
        assert!(matches!(
            judge("Test result: SUCCESS\nTest result: SUCCESS\n", Some(0x21)),
            Outcome::Crash(_)
        ));
        assert!(matches!(judge("Test result: SKIP\n", Some(0x21)), Outcome::Crash(_)));
        assert!(matches!(judge("Test result: MAYBE\n", Some(0x21)), Outcome::Crash(_)));
        // A host that overrules a guest's SUCCESS.
        assert_eq!(
            judge("Test result: SUCCESS\nhost: violation: stale\n", Some(0x23)),
            Outcome::Done(
                ExitStatus::Failure,
                "the result line says SUCCESS but the exit status says otherwise: host: violation: stale"
                    .into()
            )
        );
    }
}
