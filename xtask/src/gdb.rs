//! `cargo xtask gdb [run options] [--ex CMD]... [--batch]`: a boot with
//! QEMU stopped before the first instruction, and gdb attached with the
//! kernel's symbols and the project's commands (`xtask/gdb/pvops.py`: `bp`,
//! `pt`, `hv`).
//!
//! The symbols are the kernel image's in every environment: QEMU's gdb
//! server sees the whole machine, and under Xen or lguest the kernel is
//! one guest of it (dom0, the lguest host's guest) at its own virtual
//! addresses; a breakpoint is taken wherever the CPU's pc reaches it.
//! Xen runs in long mode, so qemu-system-x86_64's server sends 64-bit
//! registers; gdb gets an i386 view of them instead
//! (`xtask/gdb/i386-on-x86_64.xml`, which says why) and reads and writes
//! them as a whole. The Rust toolchain's pretty-printers are loaded as
//! `rust-gdb` loads them.
//!
//! QEMU's serial output goes to `target/gdb/<session>.serial.log`; its
//! result line, if the kernel got that far, is judged when gdb exits.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pvops_tests::Env;

use crate::boot::{self, Boot, Outcome};
use crate::{build, cli, toolchain, tools, EXIT_SETUP};

/// What one session produced.
pub struct Session {
    /// gdb's output (batch mode: captured; interactive: empty).
    pub gdb: String,
    /// gdb's exit status was 0.
    pub gdb_ok: bool,
    /// The kernel's serial log, then QEMU's stderr.
    pub serial: String,
    /// The boot's verdict, if it ran to its end.
    pub outcome: Outcome,
    pub elapsed: Duration,
}

/// The gdb command line for `b`: symbols, script, connection, then
/// `commands`.
fn gdb_command(b: &Boot, socket: &Path, commands: &[String], batch: bool) -> Result<Command, String> {
    let root = build::root();
    let etc = toolchain::sysroot()?.join("lib/rustlib/etc");
    let mut c = Command::new("gdb");
    c.arg("-q");
    if batch {
        // Our commands only: no ~/.gdbinit, no questions.
        c.args(["-nx", "-batch"]);
    }
    // As rust-gdb: the toolchain's pretty-printers, which the image's
    // .debug_gdb_scripts section names.
    let pythonpath = match std::env::var("PYTHONPATH") {
        Ok(p) if !p.is_empty() => format!("{p}:{}", etc.display()),
        _ => etc.display().to_string(),
    };
    c.env("PYTHONPATH", pythonpath);
    c.arg(format!("--directory={}", etc.display()));
    c.args(["-iex", &format!("add-auto-load-safe-path {}", etc.display())]);
    let mut ex = vec!["set pagination off".to_string(), "set confirm off".to_string()];
    if b.env.uses_xen() {
        ex.push(format!("set tdesc filename {}", root.join("xtask/gdb/i386-on-x86_64.xml").display()));
        ex.push("set remote fetch-register-packet off".into());
        ex.push("set remote set-register-packet off".into());
    }
    ex.push(format!("source {}", root.join("xtask/gdb/pvops.py").display()));
    ex.push(format!("target remote {}", socket.display()));
    ex.extend(commands.iter().cloned());
    for e in &ex {
        c.args(["-ex", e]);
    }
    c.arg(&b.kernel);
    Ok(c)
}

/// Boots `b` stopped, runs gdb with `commands` against it, and ends the
/// boot. `name` names the session's files under target/gdb/. In batch
/// mode gdb's output is captured and the session is bounded by the boot's
/// timeout.
pub fn session(name: &str, mut b: Boot, commands: &[String], batch: bool) -> Result<Session, String> {
    let start = Instant::now();
    let dir = build::root().join("target/gdb");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let socket = dir.join(format!("{name}.sock"));
    let _ = std::fs::remove_file(&socket);
    b.gdb = Some(format!("unix:{},server=on,wait=off", socket.display()));
    let log_path = dir.join(format!("{name}.serial.log"));
    let mut qemu = boot::qemu(&b);
    // Its own process group: a Ctrl-C in gdb (stop the kernel) must not
    // reach QEMU.
    std::os::unix::process::CommandExt::process_group(&mut qemu, 0);
    let mut qemu = qemu
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", boot::qemu_binary(b.env)))?;
    let serial = collect_serial(&mut qemu, &log_path)?;
    let mut stderr = qemu.stderr.take().expect("piped");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    // QEMU creates the socket as it starts.
    while !socket.exists() {
        if start.elapsed() > Duration::from_secs(10) || qemu.try_wait().ok().flatten().is_some() {
            let _ = qemu.kill();
            return Err(format!("QEMU did not open its gdb socket {}", socket.display()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut gdb = gdb_command(&b, &socket, commands, batch)?;
    let (gdb_out, gdb_ok) = if batch {
        let (mut reader, writer) = std::io::pipe().map_err(|e| e.to_string())?;
        gdb.stdin(Stdio::null()).stdout(writer.try_clone().map_err(|e| e.to_string())?).stderr(writer);
        let mut child = gdb.spawn().map_err(|e| format!("cannot start gdb: {e}"))?;
        // The pipe's write ends live in `gdb` (the Command) too.
        drop(gdb);
        let out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = reader.read_to_string(&mut s);
            s
        });
        let ok = wait_until(&mut child, start + b.timeout);
        (out.join().unwrap_or_default(), ok)
    } else {
        ignore_interrupts();
        println!("xtask: gdb on {} (serial log: {})", b.kernel.display(), log_path.display());
        let ok = gdb.status().map(|s| s.success()).unwrap_or(false);
        (String::new(), ok)
    };
    // gdb is gone: the kernel runs on (detached) or was killed. Give it
    // its boot's time to finish.
    let finished = wait_until(&mut qemu, Instant::now() + b.timeout);
    let status = qemu.wait().ok().and_then(|s| s.code());
    let mut log = serial.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    if !stderr.trim().is_empty() {
        log.push_str("--- qemu stderr ---\n");
        log.push_str(&stderr);
    }
    let _ = std::fs::remove_file(&socket);
    let outcome = if finished { boot::judge(&log, status) } else { Outcome::Timeout };
    Ok(Session { gdb: gdb_out, gdb_ok, serial: log, outcome, elapsed: start.elapsed() })
}

/// Reads QEMU's serial output into a string and a log file.
fn collect_serial(qemu: &mut Child, path: &Path) -> Result<std::thread::JoinHandle<String>, String> {
    let stdout = qemu.stdout.take().expect("piped");
    let mut file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
            let line = String::from_utf8_lossy(&line).trim_end_matches('\r').to_string();
            let _ = writeln!(file, "{line}");
            all.push_str(&line);
            all.push('\n');
        }
        all
    }))
}

/// Waits for `child` until `deadline`, then kills it; true if it ended by
/// itself.
fn wait_until(child: &mut Child, deadline: Instant) -> bool {
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A Ctrl-C at gdb's prompt stops the kernel; the terminal sends it to
/// xtask too, which must outlive gdb to end the boot.
fn ignore_interrupts() {
    const SIGINT: i32 = 2;
    const SIG_IGN: usize = 1;
    extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    // SAFETY: libc's signal(2) with SIG_IGN installs no handler of ours;
    // it only changes how this process reacts to SIGINT.
    unsafe {
        signal(SIGINT, SIG_IGN);
    }
}

/// Splits `args` into run options and the session's own (`--ex CMD`,
/// `--batch`).
fn split(args: &[String]) -> Result<(Vec<String>, Vec<String>, bool), String> {
    let (mut run, mut commands, mut batch) = (Vec::new(), Vec::new(), false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--ex" => commands.push(it.next().cloned().ok_or("--ex needs a gdb command")?),
            "--batch" => batch = true,
            "--gdb" => return Err("--gdb is what this command does; leave it out".into()),
            _ => run.push(a.clone()),
        }
    }
    Ok((run, commands, batch))
}

pub fn main(args: &[String]) -> u8 {
    let prepared = split(args).and_then(|(run, commands, batch)| {
        let o = cli::parse(&run)?;
        if o.env.is_domu() {
            return Err(format!(
                "--env {}: a domU is one guest among dom0's processes; debug the kernel as Xen's dom0 (--env xen)",
                o.env.name()
            ));
        }
        if o.env == Env::XenPvh {
            return Err("--env xen-pvh: QEMU's gdb server cannot read the memory of a guest under nested \
                        paging (no backtrace, no variables); debug the kernel as Xen's PV dom0 (--env xen)"
                .into());
        }
        tools::ensure_gdb()?;
        Ok((cli::prepare(o)?, commands, batch))
    });
    let (b, commands, batch) = match prepared {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xtask gdb: {e}");
            return EXIT_SETUP;
        }
    };
    let s = match session("session", b, &commands, batch) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("xtask gdb: {e}");
            return EXIT_SETUP;
        }
    };
    print!("{}", s.gdb);
    match &s.outcome {
        Outcome::Timeout => println!("xtask: the kernel did not finish after gdb left; QEMU stopped"),
        Outcome::Crash(_) => println!("xtask: no result line (gdb killed the kernel, or it stopped short)"),
        o => println!("xtask: the kernel ended: {}", o.word()),
    }
    if s.gdb_ok {
        0
    } else {
        1
    }
}
