//! The kernel's Rust toolchain.
//!
//! xtask itself builds with whatever toolchain runs it: `cargo xtask` on a
//! machine with only rustup and its default stable toolchain must start.
//! The kernel cannot: build-std and a JSON target spec are nightly-only.
//! So the nightly is pinned here, not in a workspace-wide
//! `rust-toolchain.toml` (which would make cargo stop before xtask starts
//! wherever rustup does not install toolchains on its own), installed by
//! xtask when missing, with a line saying so, as QEMU and Xen are, and
//! every cargo that xtask starts runs on it.

use std::process::Command;
use std::sync::OnceLock;

/// The nightly the kernel is built, linted and tested with.
pub const PINNED: &str = "nightly-2026-05-20";

/// What that nightly needs beyond the minimal profile: core's source for
/// build-std, lld for the link, the linters, and Miri for the host tests'
/// unsafe code.
pub const COMPONENTS: &[&str] = &["rust-src", "llvm-tools", "rustfmt", "clippy", "miri"];

/// `cargo` on the pinned toolchain, installed first if missing. Through
/// rustup's proxy, with the toolchain named explicitly: the proxy that
/// started xtask put its own choice in `RUSTUP_TOOLCHAIN`, and `$CARGO` is
/// that toolchain's binary.
pub fn cargo() -> Result<Command, String> {
    ensure()?;
    let mut c = Command::new("cargo");
    c.env("RUSTUP_TOOLCHAIN", PINNED);
    Ok(c)
}

/// The pinned toolchain's sysroot (its gdb pretty-printers are under
/// `lib/rustlib/etc`).
pub fn sysroot() -> Result<std::path::PathBuf, String> {
    ensure()?;
    let out = Command::new("rustc")
        .env("RUSTUP_TOOLCHAIN", PINNED)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("running rustc: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().into())
}

/// The pinned toolchain and its components: present, or installed now.
/// Checked once per xtask run.
fn ensure() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(install_if_missing).clone()
}

fn install_if_missing() -> Result<(), String> {
    let what = match missing()? {
        Missing::Nothing => return Ok(()),
        Missing::Toolchain => format!("Rust {PINNED} is not installed"),
        Missing::Components(m) => format!("Rust {PINNED} lacks {}", m.join(", ")),
    };
    println!(
        "xtask: {what}: installing it with {} (the kernel needs this nightly: build-std, a JSON target) ...",
        COMPONENTS.join(", ")
    );
    let mut c = Command::new("rustup");
    // Not rustup itself: updating it is the user's call.
    c.args(["toolchain", "install", PINNED, "--profile", "minimal", "--no-self-update"]);
    for comp in COMPONENTS {
        c.args(["-c", comp]);
    }
    let ok = c.status().map(|s| s.success()).unwrap_or(false);
    match missing() {
        Ok(Missing::Nothing) if ok => Ok(()),
        _ => Err(format!(
            "installing Rust {PINNED} failed; by hand:\n  rustup toolchain install {PINNED} --profile minimal -c {}",
            COMPONENTS.join(" -c ")
        )),
    }
}

enum Missing {
    Nothing,
    Toolchain,
    Components(Vec<String>),
}

/// What is missing of the pinned toolchain.
fn missing() -> Result<Missing, String> {
    let out = Command::new("rustup")
        .args(["component", "list", "--installed", "--toolchain", PINNED])
        .output()
        .map_err(|e| {
            format!(
                "cannot run rustup ({e}): the kernel needs Rust {PINNED}, which xtask installs through rustup (https://rustup.rs)"
            )
        })?;
    if !out.status.success() {
        return Ok(Missing::Toolchain);
    }
    let m = missing_from(&String::from_utf8_lossy(&out.stdout));
    Ok(if m.is_empty() { Missing::Nothing } else { Missing::Components(m) })
}

/// The components `installed` (rustup's list: "rust-src",
/// "clippy-x86_64-unknown-linux-gnu", ...) lacks.
fn missing_from(installed: &str) -> Vec<String> {
    COMPONENTS
        .iter()
        .filter(|&&want| {
            !installed.lines().any(|l| {
                let l = l.trim();
                l == want || l.strip_prefix(want).is_some_and(|rest| rest.starts_with('-'))
            })
        })
        .map(|c| c.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_installed_for_the_host_counts() {
        let all = "cargo-x86_64-unknown-linux-gnu\nclippy-x86_64-unknown-linux-gnu\n\
                   llvm-tools-x86_64-unknown-linux-gnu\nmiri-x86_64-unknown-linux-gnu\nrust-src\n\
                   rustfmt-x86_64-unknown-linux-gnu\n";
        assert!(missing_from(all).is_empty());
        let no_src = all.replace("rust-src\n", "");
        assert_eq!(missing_from(&no_src), ["rust-src"]);
        // Only the component itself, or it for a target: rust-std is not
        // rust-src.
        assert_eq!(missing_from("rust-std-x86_64\nllvm-toolsy\n").len(), COMPONENTS.len());
    }
}
