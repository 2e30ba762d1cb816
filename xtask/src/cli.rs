//! `cargo xtask run`.

use std::time::Duration;

use pvops_tests::Env;

use crate::boot::{self, Boot, Outcome};
use crate::{build, domu, preflight, tools, EXIT_SETUP};

pub struct RunOpts {
    pub env: Env,
    pub cpu: String,
    pub mem: String,
    pub append: String,
    pub build: build::Opts,
    pub accel: String,
    pub gdb: bool,
    /// QEMU `-icount shift=0`: the TSC counts instructions, and the
    /// kernel's `perf` figures are deterministic.
    pub icount: bool,
    pub timeout: Option<u64>,
}

pub const ENVS: &str = "qemu, qemu-pvh, xen, xen-pvh, lguest, xen-domu, xen-pvh-domu";

fn parse_env(name: &str) -> Result<Env, String> {
    match name {
        "qemu" => Ok(Env::Qemu),
        "qemu-pvh" => Ok(Env::QemuPvh),
        "xen" => Ok(Env::Xen),
        "xen-pvh" => Ok(Env::XenPvh),
        "lguest" => Ok(Env::Lguest),
        "xen-domu" => Ok(Env::XenDomu),
        "xen-pvh-domu" => Ok(Env::XenPvhDomu),
        other => Err(format!("--env {other}: available environments: {ENVS}")),
    }
}

pub fn parse(args: &[String]) -> Result<RunOpts, String> {
    let mut o = RunOpts {
        env: Env::Qemu,
        cpu: "max".into(),
        mem: "128M".into(),
        append: String::new(),
        build: build::Opts::default(),
        accel: "tcg".into(),
        gdb: false,
        icount: false,
        timeout: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--env" => o.env = parse_env(&value()?)?,
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
            "--icount" => o.icount = true,
            "--timeout" => {
                o.timeout = Some(value()?.parse().map_err(|_| "--timeout takes seconds".to_string())?)
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    if boot::mib(&o.mem).is_none() {
        return Err(format!("--mem {}: use a size like 128M or 1G", o.mem));
    }
    Ok(o)
}

/// Tools, images, and the boot description.
pub fn prepare(o: RunOpts) -> Result<Boot, String> {
    tools::ensure_qemu()?;
    let kernel_toml =
        std::fs::read_to_string(build::root().join("kernel/Cargo.toml")).map_err(|e| e.to_string())?;
    preflight::image_fits(o.env, &kernel_toml, &o.build)?;
    preflight::cpu_fits(o.env, &o.cpu, boot::qemu_binary(o.env))?;
    let hypervisor = tools::hypervisor(o.env)?;
    let mut kernel = build::image("kernel", &o.build)?;
    if o.env == Env::QemuPvh {
        kernel = build::pvh_copy(&kernel)?;
    }
    let mut timeout = match o.timeout {
        Some(s) => Duration::from_secs(s),
        None if o.env.is_domu() => domu::GUEST_TIMEOUT,
        None if o.env.uses_xen() => crate::test::XEN_TIMEOUT,
        None => Duration::from_secs(60),
    };
    // A domU: one guest of a dom0 boot, which gets its own time on top of
    // the guest's (--timeout).
    let dom0 = if o.env.is_domu() {
        let guest = domu::Guest {
            name: "pvops".into(),
            pvh: o.env == Env::XenPvhDomu,
            kernel: kernel.clone(),
            mem_mib: boot::mib(&o.mem).unwrap_or(128),
            cmdline: o.append.clone(),
            timeout,
        };
        let d = domu::prepare(vec![guest])?;
        timeout = d.timeout();
        Some(d)
    } else {
        None
    };
    Ok(Boot {
        env: o.env,
        kernel,
        loader: None,
        hypervisor,
        dom0,
        cpu: o.cpu,
        mem: o.mem,
        append: o.append,
        accel: o.accel,
        gdb: o.gdb.then(|| "tcp::1234".to_string()),
        icount: o.icount,
        timeout,
    })
}

pub fn run(args: &[String]) -> u8 {
    let b = match parse(args).and_then(prepare) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("xtask run: {e}");
            return EXIT_SETUP;
        }
    };
    let whole = boot::run(&b, true);
    // A domU run's verdict is its guest's; dom0's own is said first.
    let guest;
    let r = match &b.dom0 {
        Some(d) => {
            let how = match &whole.outcome {
                Outcome::Crash(why) => format!("CRASH: {why}"),
                o => o.word().to_string(),
            };
            println!("xtask: dom0: {how} in {:.1} s", whole.elapsed.as_secs_f64());
            guest = domu::finish(d, &whole).swap_remove(0);
            &guest
        }
        None => &whole,
    };
    match &r.outcome {
        o if o.is_success() => {}
        Outcome::Crash(why) => eprintln!("xtask: CRASH: {why}"),
        Outcome::Timeout => {
            let limit = b.dom0.as_ref().map_or(b.timeout, |d| d.guests[0].timeout);
            eprintln!("xtask: TIMEOUT after {} s", limit.as_secs())
        }
        o => eprintln!("xtask: {}", o.word()),
    }
    if let Some(i) = whole.log.find("--- qemu stderr ---") {
        eprint!("{}", &whole.log[i..]);
    }
    r.outcome.exit_code()
}
