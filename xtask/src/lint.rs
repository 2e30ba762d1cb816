//! `cargo xtask lint`: formatting and clippy, for host crates and for the
//! bare-metal images (which plain `cargo clippy` does not build).

use crate::build::{self, KERNEL_TARGET_ARGS, USER_PROGRAMS_ENV};
use crate::toolchain;

fn cargo(args: &[&str], env: &[(&str, &std::path::Path)]) -> bool {
    println!("xtask: cargo {}", args.join(" "));
    let mut cargo = match toolchain::cargo() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("xtask: {e}");
            return false;
        }
    };
    cargo.current_dir(build::root()).args(args).envs(env.iter().copied()).status().is_ok_and(|s| s.success())
}

/// No warnings, and every unsafe block says why it is sound.
const DENY: &[&str] = &["--", "-D", "warnings", "-D", "clippy::undocumented_unsafe_blocks"];

pub fn main() -> u8 {
    if let Err(e) = toolchain::cargo() {
        eprintln!("xtask lint: {e}");
        return crate::EXIT_SETUP;
    }
    let mut bare_metal = vec![
        "clippy",
        "--package",
        "kernel",
        "--package",
        "mbloader",
        "--package",
        "lguest-host",
        "--package",
        "user-lib",
        "--package",
        "user-programs",
    ];
    bare_metal.extend_from_slice(KERNEL_TARGET_ARGS);
    bare_metal.extend_from_slice(DENY);
    let mut host = vec!["clippy", "--all-targets"];
    host.extend_from_slice(DENY);
    // The libraries of crates whose binaries are bare-metal only (checked
    // with the kernel target below), and their tests, on the host.
    let mut host_libs = vec![
        "clippy",
        "--package",
        "lguest-host",
        "--package",
        "user-lib",
        "--package",
        "user-programs",
        "--lib",
        "--tests",
    ];
    host_libs.extend_from_slice(DENY);
    let ok = cargo(&["fmt", "--all", "--check"], &[]) && cargo(&host, &[]) && cargo(&host_libs, &[]) && {
        // The kernel embeds the user programs: they must exist to check it.
        match build::user_programs(&build::root(), &build::root().join("target")) {
            Ok(programs) => cargo(&bare_metal, &[(USER_PROGRAMS_ENV, &programs)]),
            Err(e) => {
                eprintln!("xtask lint: {e}");
                false
            }
        }
    };
    if ok {
        0
    } else {
        1
    }
}
