//! `cargo xtask ptdump [--env NAME]... [--mem SIZE] [--out FILE]`: boots
//! each environment and draws the live pagetable its kernel reports
//! (the self-check's `ptdump:` lines, `ptdump_log.rs`) as one SVG, a
//! column per environment (`ptdump_svg.rs`). The picture in the README,
//! docs/ptdump.svg, is this command's output with its defaults.

use std::path::PathBuf;

use pvops_tests::Env;

use crate::boot::{self, Boot};
use crate::ptdump_log;
use crate::ptdump_svg::{self, Column};
use crate::{build, tools, EXIT_SETUP};

/// A column: how its environment is booted.
struct Spec {
    name: &'static str,
    title: &'static str,
    env: Env,
    cpu: &'static str,
}

const SPECS: &[Spec] = &[
    Spec { name: "native-2level", title: "native, 2-level (-cpu pentium)", env: Env::Qemu, cpu: "pentium" },
    Spec { name: "native-pae", title: "native, PAE (-cpu max)", env: Env::Qemu, cpu: "max" },
    Spec { name: "xen", title: "Xen PV dom0", env: Env::Xen, cpu: "max" },
    Spec { name: "xen-pvh", title: "Xen PVH dom0", env: Env::XenPvh, cpu: "max" },
    Spec { name: "lguest", title: "lguest guest", env: Env::Lguest, cpu: "max" },
];

struct Opts {
    specs: Vec<&'static Spec>,
    mem: String,
    out: PathBuf,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts { specs: Vec::new(), mem: "128M".into(), out: build::root().join("docs/ptdump.svg") };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--env" => {
                let name = value()?;
                let names: Vec<&str> = SPECS.iter().map(|s| s.name).collect();
                let spec = SPECS
                    .iter()
                    .find(|s| s.name == name)
                    .ok_or(format!("--env {name}: the columns are {}", names.join(", ")))?;
                o.specs.push(spec);
            }
            "--mem" => o.mem = value()?,
            "--out" => o.out = value()?.into(),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if boot::mib(&o.mem).is_none() {
        return Err(format!("--mem {}: use a size like 128M or 1G", o.mem));
    }
    if o.specs.is_empty() {
        o.specs = SPECS.iter().collect();
    }
    Ok(o)
}

fn boots(o: &Opts) -> Result<Vec<Boot>, String> {
    tools::ensure_qemu()?;
    let kernel = build::image("kernel", &build::Opts::default())?;
    o.specs
        .iter()
        .map(|s| {
            Ok(Boot {
                env: s.env,
                kernel: kernel.clone(),
                loader: None,
                hypervisor: tools::hypervisor(s.env)?,
                dom0: None,
                cpu: s.cpu.into(),
                mem: o.mem.clone(),
                append: "timetest=short".into(),
                accel: "tcg".into(),
                gdb: None,
                icount: false,
                timeout: crate::test::XEN_TIMEOUT,
            })
        })
        .collect()
}

pub fn main(args: &[String]) -> u8 {
    let (o, boots) = match parse(args).and_then(|o| boots(&o).map(|b| (o, b))) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xtask ptdump: {e}");
            return EXIT_SETUP;
        }
    };
    println!("xtask: booting {} environments for their ptdump", boots.len());
    // Two at a time: a Xen boot wants a core of its own.
    let runs: Vec<boot::Run> = boots
        .chunks(2)
        .flat_map(|pair| {
            std::thread::scope(|s| {
                let handles: Vec<_> = pair.iter().map(|b| s.spawn(|| boot::run(b, false))).collect();
                handles.into_iter().map(|h| h.join().expect("boot thread")).collect::<Vec<_>>()
            })
        })
        .collect();
    let mut columns = Vec::new();
    for (spec, run) in o.specs.iter().zip(&runs) {
        if !run.outcome.is_success() {
            println!(
                "xtask: {}: the boot ended {} (its ptdump is drawn all the same)",
                spec.name,
                run.outcome.word()
            );
        }
        match ptdump_log::parse(&run.log) {
            Ok(dump) => columns.push(Column { title: spec.title.into(), dump }),
            Err(e) => {
                eprintln!("xtask ptdump: {}: {e}\n{}", spec.name, run.log);
                return 1;
            }
        }
    }
    let svg = ptdump_svg::draw(&columns);
    if let Err(e) = std::fs::write(&o.out, svg) {
        eprintln!("xtask ptdump: writing {}: {e}", o.out.display());
        return EXIT_SETUP;
    }
    println!("xtask: wrote {} ({} columns)", o.out.display(), columns.len());
    0
}
