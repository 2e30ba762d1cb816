//! `cargo xtask`: the project's commands.
//!
//! - `cargo xtask run [options]`: build a kernel image, boot it, stream its
//!   serial log; exit 0 only on `Test result: SUCCESS`.
//! - `cargo xtask test`: host tests, then the boot matrix, then a summary.
//!
//! Exit statuses of both (`boot::exit`): 0 success, 1 failure, 2 error,
//! 3 crash (no result line), 4 timeout, 5 could not set up (build, tools,
//! arguments), 6 skip (this configuration cannot run the kernel).

mod bench;
mod bench_compare;
mod bench_domu;
mod bench_targets;
mod boot;
mod build;
mod cli;
mod domu;
mod fuzz;
mod gdb;
mod json;
mod lint;
mod miri;
mod plot;
mod preflight;
mod progress;
mod ptdump;
mod ptdump_log;
mod ptdump_svg;
mod report;
mod scaffold;
mod scaffold_check;
mod setup_errors;
mod svg;
mod test;
mod toolchain;
mod tools;
mod user_elf;

use std::process::ExitCode;

pub const EXIT_SETUP: u8 = boot::exit::SETUP;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  run    build the kernel, boot it, stream the serial log
         --env ENV             qemu (multiboot, default), qemu-pvh, xen (PV dom0),
                               xen-pvh (PVH dom0), lguest (guest of our host),
                               xen-domu, xen-pvh-domu (PV/PVH guest of a Linux
                               dom0's xl create)
         --cpu MODEL           QEMU CPU model (default max)
         --mem SIZE            guest memory (xen: dom0_mem; lguest, domU: the
                               guest's), e.g. 128M, 1G (default 128M)
         --append \"CMDLINE\"    kernel command line
         --features LIST       kernel cargo features (backends: native,xen,lguest)
         --no-default-features
         --release             optimised build
         --accel tcg|kvm       QEMU accelerator (default tcg)
         --gdb                 wait for gdb on :1234 (no timeout)
         --icount              count instructions (QEMU -icount shift=0); with
                               --append perf the kernel prints exact figures
         --timeout SECS        boot timeout (default 60; domU: the guest's, 30,
                               dom0's boot has its own)
  gdb    boot as run does (same options), QEMU stopped, and debug it: gdb
         with the kernel's symbols and xtask/gdb/pvops.py (bp PATH: break
         on a Rust function, generic or not; pt: the live pagetable from
         CR3; hv: the chosen backend and its counters)
         --ex CMD              a gdb command to run first (repeatable)
         --batch               run the --ex commands and leave
  ptdump boot each environment and draw its live pagetable as one SVG
         (docs/ptdump.svg): --env NAME (repeatable; native-2level,
         native-pae, xen, xen-pvh, lguest: all by default), --mem SIZE,
         --out FILE
  test   host tests, then the whole boot matrix; --filter TEXT runs the
         boot rows whose name contains TEXT, --boot-only skips host tests
  lint   cargo fmt --check and clippy (host crates and kernel target)
  bench  deterministic cost figures per environment (QEMU -icount), a
         host dispatch benchmark, target/bench.json; --quick: 64M only;
         --compare REF: also bench git REF (built in a worktree under
         target/compare) and print every figure that differs;
         --plot: no boots, draw target/bench.json as docs/bench-*.svg
  fuzz   libFuzzer over every parser of outside input (fuzz/, bodies in
         tests/fuzz-targets), then a table per target: executions,
         coverage, features, corpus, crashes (exit 1 on any crash)
         --seconds N           per target (default 60)
         --jobs J              targets run at once (default 1)
         --save-corpus         minimize what was found into fuzz/corpus/
         TARGET...             only these (default: all)
  new-backend NAME
         a new backend crate, registered and behind kernel feature NAME

exit status: 0 success, 1 failure, 2 error, 3 crash (no result line),
             4 timeout, 5 could not set up, 6 skip";

fn main() -> ExitCode {
    let args = match utf8_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("xtask: {e}");
            return ExitCode::from(EXIT_SETUP);
        }
    };
    let rest = args.get(1..).unwrap_or(&[]);
    let code = match args.first().map(String::as_str) {
        Some("run") => cli::run(rest),
        Some("test") => test::main(rest),
        Some("gdb") => gdb::main(rest),
        Some("lint") => lint::main(),
        Some("ptdump") => ptdump::main(rest),
        Some("bench") => bench::main(rest),
        Some("fuzz") => fuzz::main(rest),
        Some("new-backend") => scaffold::main(rest),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            0
        }
        _ => {
            eprintln!("{USAGE}");
            EXIT_SETUP
        }
    };
    ExitCode::from(code)
}

/// The arguments, as text: options, sizes and the kernel command line all
/// are (the kernel refuses a command line that is not UTF-8).
fn utf8_args() -> Result<Vec<String>, String> {
    let mut args: Vec<String> = Vec::new();
    for a in std::env::args_os().skip(1) {
        match a.into_string() {
            Ok(s) => args.push(s),
            Err(raw) => {
                let what = match args.last() {
                    Some(opt) if opt.starts_with("--") => format!("the value of {opt}"),
                    _ => format!("argument {}", args.len() + 1),
                };
                return Err(format!(
                    "{what} is not UTF-8 ({:?}): options and the kernel command line are text",
                    raw.to_string_lossy()
                ));
            }
        }
    }
    Ok(args)
}
