//! The tools a boot needs, installed when missing (on Debian, as root),
//! or named with the exact command that installs them.

use std::path::Path;
use std::process::Command;

const QEMU_MAJOR: u32 = 10;
const BACKPORTS_LIST: &str = "/etc/apt/sources.list.d/pvops-bookworm-backports.list";

fn qemu_major() -> Option<u32> {
    let out = Command::new("qemu-system-i386").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "QEMU emulator version 10.0.2 (Debian ...)"
    let v = text.split("version ").nth(1)?;
    v.split('.').next()?.trim().parse().ok()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn sh(cmd: &str) -> Result<(), String> {
    let ok = Command::new("sh").args(["-c", cmd]).status().map(|s| s.success()).unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(format!("command failed: {cmd}"))
    }
}

/// QEMU 10 (bookworm-backports): present, installed now, or an error that
/// says how to install it.
pub fn ensure_qemu() -> Result<(), String> {
    match qemu_major() {
        Some(v) if v >= QEMU_MAJOR => return Ok(()),
        found => {
            let what = match found {
                Some(v) => format!("QEMU {v} is too old"),
                None => "QEMU is not installed".to_string(),
            };
            let cmd = format!(
                "echo 'deb http://deb.debian.org/debian bookworm-backports main' > {BACKPORTS_LIST} && \
                 apt-get update && \
                 DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -t bookworm-backports qemu-system-x86"
            );
            if !is_root() || !Path::new("/usr/bin/apt-get").exists() {
                return Err(format!(
                    "{what}; pvops needs QEMU {QEMU_MAJOR} from bookworm-backports. Install it with:\n  sudo sh -c \"{cmd}\""
                ));
            }
            println!("xtask: {what}: installing qemu-system-x86 {QEMU_MAJOR} from bookworm-backports (apt-get) ...");
            sh(&cmd)?;
        }
    }
    match qemu_major() {
        Some(v) if v >= QEMU_MAJOR => Ok(()),
        _ => Err(format!("QEMU {QEMU_MAJOR} is still missing after installing it")),
    }
}

/// The project's Xen: Debian's Xen 4.17 source rebuilt with CONFIG_PV32
/// (and the PVH fixes, xtask/xen/*.patch), cached under target/xen. The script prints what
/// it does and takes about two minutes the first time.
pub fn ensure_xen() -> Result<std::path::PathBuf, String> {
    let root = crate::build::root();
    let out = root.join("target/xen");
    let ok = Command::new("bash")
        .arg(root.join("xtask/xen/build-xen.sh"))
        .arg(&out)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let image = out.join("xen-4.17-pv32");
    if ok && image.exists() {
        Ok(image)
    } else {
        Err("building the Xen hypervisor failed (see target/xen/build.log)".into())
    }
}

/// What runs the kernel in `env`, if not QEMU alone: the project's Xen, or
/// the project's lguest host (built like the kernel).
pub fn hypervisor(env: pvops_tests::Env) -> Result<Option<std::path::PathBuf>, String> {
    use pvops_tests::Env;
    match env {
        Env::Xen | Env::XenPvh | Env::XenDomu | Env::XenPvhDomu => ensure_xen().map(Some),
        Env::Lguest | Env::LguestLie(_) => {
            println!("xtask: building the lguest host");
            crate::build::image("lguest-host", &crate::build::Opts::default()).map(Some)
        }
        _ => Ok(None),
    }
}

/// gdb (Debian's, with Python, which our script needs): present,
/// installed now, or an error that says how to install it.
pub fn ensure_gdb() -> Result<(), String> {
    ensure_apt("gdb (with Python)", "gdb", || {
        Command::new("gdb")
            .args(["-nx", "-batch", "-ex", "python print('pvops')"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("pvops"))
    })
}

/// A Debian tool run as `name args` (g++ for libFuzzer's runtime):
/// present, installed now, or an error with the exact command.
pub fn ensure_apt_tool(name: &str, args: &[&str], package: &str) -> Result<(), String> {
    ensure_apt(name, package, || Command::new(name).args(args).output().is_ok_and(|o| o.status.success()))
}

/// `what`, which `present` tells: there, installed now from Debian's
/// `package` through apt-get as root with a line saying so, or an error
/// with the exact command.
fn ensure_apt(what: &str, package: &str, present: impl Fn() -> bool) -> Result<(), String> {
    if present() {
        return Ok(());
    }
    let cmd = format!(
        "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {package}"
    );
    if !is_root() || !Path::new("/usr/bin/apt-get").exists() {
        return Err(format!("{what} is not installed. Install it with:\n  sudo sh -c \"{cmd}\""));
    }
    println!("xtask: {what} is not installed: installing Debian's {package} (apt-get) ...");
    sh(&cmd)?;
    if present() {
        Ok(())
    } else {
        Err(format!("{what} is still missing after installing {package}"))
    }
}
