//! `cargo xtask lint`: formatting and clippy, for host crates and for the
//! bare-metal images (which plain `cargo clippy` does not build).

use crate::build::{self, KERNEL_TARGET_ARGS};
use crate::toolchain;

fn cargo(args: &[&str]) -> bool {
    println!("xtask: cargo {}", args.join(" "));
    let mut cargo = match toolchain::cargo() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("xtask: {e}");
            return false;
        }
    };
    cargo.current_dir(build::root()).args(args).status().map(|s| s.success()).unwrap_or(false)
}

/// No warnings, and every unsafe block says why it is sound.
const DENY: &[&str] = &["--", "-D", "warnings", "-D", "clippy::undocumented_unsafe_blocks"];

pub fn main() -> u8 {
    if let Err(e) = toolchain::cargo() {
        eprintln!("xtask lint: {e}");
        return crate::EXIT_SETUP;
    }
    let mut kernel =
        vec!["clippy", "--package", "kernel", "--package", "mbloader", "--package", "lguest-host"];
    kernel.extend_from_slice(KERNEL_TARGET_ARGS);
    kernel.extend_from_slice(DENY);
    let mut host = vec!["clippy", "--all-targets"];
    host.extend_from_slice(DENY);
    // The lguest host's library and its tests on the host (its binary is
    // bare-metal only: checked with the kernel target below).
    let mut host_lib = vec!["clippy", "--package", "lguest-host", "--lib", "--tests"];
    host_lib.extend_from_slice(DENY);
    let ok = cargo(&["fmt", "--all", "--check"]) && cargo(&host) && cargo(&host_lib) && cargo(&kernel);
    if ok {
        0
    } else {
        1
    }
}
