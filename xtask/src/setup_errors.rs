//! The set-up mistakes a new user made, proven the way the user meets
//! them: `cargo xtask run` with each one must stop before anything is
//! built or booted, with exit status 5 and a line that says what is wrong
//! and what to do (`preflight.rs`, `main.rs`). Before these checks, the
//! same commands panicked with a backtrace, crashed with an empty log,
//! ended in Xen's panic, or hung until the lguest host's watchdog.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::process::Command;
use std::time::Instant;

use crate::boot::exit;
use crate::report::Entry;

pub struct Mistake {
    pub name: &'static str,
    pub args: Vec<OsString>,
    /// What the error line must say.
    pub says: &'static [&'static str],
}

fn args(a: &[&str]) -> Vec<OsString> {
    a.iter().map(OsString::from).collect()
}

pub fn mistakes() -> Vec<Mistake> {
    let mut not_utf8 = args(&["run", "--append"]);
    not_utf8.push(OsString::from_vec(b"console=\xff".to_vec()));
    vec![
        Mistake {
            name: "setup-append-not-utf8",
            args: not_utf8,
            says: &["the value of --append is not UTF-8"],
        },
        Mistake {
            name: "setup-xen-on-a-32-bit-cpu",
            args: args(&["run", "--env", "xen", "--cpu", "pentium"]),
            says: &["--cpu pentium under --env xen", "64-bit CPU model", "try --cpu max"],
        },
        Mistake {
            name: "setup-xen-pvh-without-nested-paging",
            args: args(&["run", "--env", "xen-pvh", "--cpu", "qemu64"]),
            says: &["nested paging (NPT)"],
        },
        Mistake {
            name: "setup-xen-without-its-feature",
            args: args(&["run", "--env", "xen", "--no-default-features", "--features", "native"]),
            says: &["this image has no Xen PV entry", "--features native,xen"],
        },
        Mistake {
            name: "setup-lguest-without-its-feature",
            args: args(&["run", "--env", "lguest", "--no-default-features", "--features", "native,xen"]),
            says: &["this image has no lguest backend", "--features native,xen,lguest"],
        },
    ]
}

/// Runs this xtask with the mistake; the row for the report.
pub fn check(m: &Mistake) -> Entry {
    let start = Instant::now();
    let out = std::env::current_exe().and_then(|exe| Command::new(exe).args(&m.args).output());
    let (code, text) = match out {
        Ok(o) => (
            o.status.code(),
            format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
        ),
        Err(e) => (None, format!("cannot run xtask: {e}")),
    };
    let verdict = if code != Some(exit::SETUP as i32) {
        Err(format!("exit status {code:?}, not {}", exit::SETUP))
    } else if let Some(missing) = m.says.iter().find(|s| !text.contains(*s)) {
        Err(format!("the error does not say {missing:?}"))
    } else if text
        .lines()
        .any(|l| l.starts_with("xtask: building") || l.starts_with("xen: ") || l.contains("Test result"))
    {
        Err("it built or booted before saying so".into())
    } else {
        Ok(())
    };
    let shown: Vec<String> = m.args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    Entry {
        group: "setup",
        name: m.name.into(),
        env: "-".into(),
        cpu: "-".into(),
        mem: "-".into(),
        result: code.map_or("killed".into(), |c| format!("exit {c}")),
        backend: "-".into(),
        paging: "-".into(),
        seconds: start.elapsed().as_secs_f64(),
        verdict,
        log: format!("$ cargo xtask {}\n{text}", shown.join(" ")),
    }
}
