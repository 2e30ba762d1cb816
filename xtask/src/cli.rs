//! `cargo xtask run`.

use std::time::Duration;

use pvops_tests::Env;

use crate::boot::{self, Boot, Outcome};
use crate::{build, tools, EXIT_SETUP};

pub struct RunOpts {
    pub env: String,
    pub cpu: String,
    pub mem: String,
    pub append: String,
    pub build: build::Opts,
    pub accel: String,
    pub gdb: bool,
    pub timeout: u64,
}

fn parse(args: &[String]) -> Result<RunOpts, String> {
    let mut o = RunOpts {
        env: "qemu".into(),
        cpu: "max".into(),
        mem: "128M".into(),
        append: String::new(),
        build: build::Opts::default(),
        accel: "tcg".into(),
        gdb: false,
        timeout: 60,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--env" => o.env = value()?,
            "--cpu" => o.cpu = value()?,
            "--mem" => o.mem = value()?,
            "--append" => o.append = value()?,
            "--features" => o.build.features = Some(value()?),
            "--no-default-features" => o.build.no_default_features = true,
            "--release" => o.build.release = true,
            "--accel" => {
                o.accel = value()?;
                if o.accel != "tcg" && o.accel != "kvm" {
                    return Err(format!("--accel {}: use tcg or kvm", o.accel));
                }
            }
            "--gdb" => o.gdb = true,
            "--timeout" => o.timeout = value()?.parse().map_err(|_| "--timeout takes seconds".to_string())?,
            other => return Err(format!("unknown option {other}")),
        }
    }
    if o.env != "qemu" && o.env != "qemu-pvh" {
        return Err(format!("--env {}: available environments: qemu, qemu-pvh", o.env));
    }
    Ok(o)
}

pub fn run(args: &[String]) -> u8 {
    let o = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("xtask run: {e}");
            return EXIT_SETUP;
        }
    };
    if let Err(e) = tools::ensure_rust_src().and_then(|_| tools::ensure_qemu()) {
        eprintln!("xtask: {e}");
        return EXIT_SETUP;
    }
    let env = if o.env == "qemu-pvh" { Env::QemuPvh } else { Env::Qemu };
    let kernel = match build::image("kernel", &o.build).and_then(|k| {
        if env == Env::QemuPvh {
            build::pvh_copy(&k)
        } else {
            Ok(k)
        }
    }) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("xtask: {e}");
            return EXIT_SETUP;
        }
    };
    let b = Boot {
        env,
        kernel,
        loader: None,
        cpu: o.cpu,
        mem: o.mem,
        append: o.append,
        accel: o.accel,
        gdb: o.gdb,
        timeout: Duration::from_secs(o.timeout),
    };
    let r = boot::run(&b, true);
    match &r.outcome {
        Outcome::Success => {}
        Outcome::Crash(why) => eprintln!("xtask: CRASH: {why}"),
        Outcome::Timeout => eprintln!("xtask: TIMEOUT after {} s", o.timeout),
        o => eprintln!("xtask: {}", o.word()),
    }
    if let Some(i) = r.log.find("--- qemu stderr ---") {
        eprint!("{}", &r.log[i..]);
    }
    r.outcome.exit_code()
}
