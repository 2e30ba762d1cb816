//! Xen domUs, built by Xen's own toolstack. The project's Xen boots a Linux
//! dom0 (Debian's kernel; Xen's `xl`, `xenstored` and `xenconsoled`;
//! busybox) whose `/init` (`xtask/xen/dom0-init`) runs `xl create` for
//! each guest in turn, relays its console and says how `xl` saw it end.
//! One boot runs all the domU rows of a `cargo xtask test`.
//!
//! - `xtask/xen/provision-dom0.sh` unpacks the Debian packages into
//!   `target/domu` (once; the Xen tools pinned to the hypervisor's version);
//! - here: dom0's initramfs for one boot, a newc archive of the programs,
//!   the libraries they need, Xen's driver modules, the init, and the
//!   guests' configs and kernels;
//! - `boot.rs` boots it; `judge.rs` gives each guest its slice of the
//!   serial log and its verdict.

mod cpio;
mod elf;
pub mod judge;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use cpio::Cpio;

use crate::boot::Run;

/// One guest of a dom0 boot.
#[derive(Clone, Debug)]
pub struct Guest {
    /// The domain's name (also its console log's): letters, digits, `-_.`.
    pub name: String,
    /// `type = "pvh"` rather than `"pv"`.
    pub pvh: bool,
    pub kernel: PathBuf,
    pub mem_mib: u64,
    /// The kernel command line (`cmdline = ...`).
    pub cmdline: String,
    /// dom0 destroys the guest after this long.
    pub timeout: Duration,
}

/// A dom0 ready to boot: its kernel, and an initramfs holding its guests.
#[derive(Clone, Debug)]
pub struct Dom0 {
    /// Debian's kernel, uncompressed.
    pub vmlinux: PathBuf,
    pub initrd: PathBuf,
    pub guests: Vec<Guest>,
}

/// dom0's memory: `xl` building a 256 MiB guest fits with room to spare.
pub const DOM0_MEM_MIB: u64 = 256;
/// Memory QEMU gets beyond dom0's and the largest guest's: Xen's own (heap,
/// frame table, a PVH guest's p2m and shadow pools).
const XEN_OVERHEAD_MIB: u64 = 128;
/// How long dom0 may take to boot and start its toolstack (about 6 s
/// alone on a 2-core machine; the matrix runs two boots at a time).
const DOM0_ALLOWANCE: Duration = Duration::from_secs(120);
/// Per guest beyond its own timeout: `xl create`, draining, destroying.
const GUEST_OVERHEAD: Duration = Duration::from_secs(15);
/// The domU rows' guest timeout (a guest of ours runs well under a second).
pub const GUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// dom0's kernel command line: its console is Xen's (hvc0), the initramfs's
/// `/init` runs, and the boot is quiet so the guests' lines stand out.
pub const DOM0_CMDLINE: &str = "console=hvc0 earlyprintk=xen rdinit=/init quiet";

impl Dom0 {
    pub fn qemu_mem_mib(&self) -> u64 {
        DOM0_MEM_MIB + self.guests.iter().map(|g| g.mem_mib).max().unwrap_or(0) + XEN_OVERHEAD_MIB
    }

    /// The whole boot's timeout: dom0's allowance plus every guest's.
    pub fn timeout(&self) -> Duration {
        self.guests.iter().fold(DOM0_ALLOWANCE, |t, g| t + g.timeout + GUEST_OVERHEAD)
    }
}

/// Programs dom0 runs (paths in the unpacked packages). The real binaries:
/// `/usr/sbin/xl` and friends are Debian's version-dispatching wrapper.
const PROGRAMS: &[&str] = &[
    "usr/lib/xen-4.17/bin/xl",
    "usr/lib/xen-4.17/bin/xenstored",
    "usr/lib/xen-4.17/bin/xenconsoled",
    "usr/lib/xen-4.17/bin/xen-init-dom0",
    "usr/lib/xen-4.17/bin/xenctx",
    "usr/bin/xenstore",
];
/// `xenstore` does what its name says: these are links to it.
const XENSTORE_LINKS: &[&str] =
    &["xenstore-exists", "xenstore-read", "xenstore-write", "xenstore-ls", "xenstore-rm"];
/// Where the programs' libraries are found, in this order.
const LIB_DIRS: &[&str] = &["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"];
/// Needed but named by no `DT_NEEDED`: glibc `dlopen()`s libgcc_s for
/// `pthread_cancel`, which `xl` uses.
const DLOPENED: &[&str] = &["lib/x86_64-linux-gnu/libgcc_s.so.1"];
/// The program interpreter (`PT_INTERP`) and where it really is.
const INTERP: (&str, &str) = ("lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
/// Xen's drivers dom0's toolstack needs (`/dev/xen/*`, `/proc/xen`).
const MODULES: &[&str] = &["xen-evtchn", "xen-privcmd", "xen-gntdev", "xen-gntalloc", "xenfs"];
/// Directories dom0's init expects.
const DIRS: &[&str] = &[
    "/bin",
    "/sbin",
    "/usr",
    "/usr/bin",
    "/usr/sbin",
    "/usr/lib",
    "/lib",
    "/lib64",
    "/lib/modules",
    "/etc",
    "/etc/xen",
    "/proc",
    "/sys",
    "/dev",
    "/run",
    "/tmp",
    "/root",
    "/var",
    "/var/lib",
    "/var/log",
    "/guests",
    "/guests/images",
];

fn out_dir() -> PathBuf {
    crate::build::root().join("target/domu")
}

fn script(name: &str) -> PathBuf {
    crate::build::root().join("xtask/xen").join(name)
}

/// The Debian packages, unpacked under target/domu (cached); returns that
/// directory.
pub fn provision() -> Result<PathBuf, String> {
    let out = out_dir();
    let provision = script("provision-dom0.sh");
    let cached = Command::new("bash").arg(&provision).arg("--cached").arg(&out).status();
    if !cached.map(|s| s.success()).unwrap_or(false) {
        println!(
            "xtask: provisioning a Linux dom0 for the domU rows (Debian packages: Linux, Xen's toolstack, busybox; about 10 s the first time)"
        );
    }
    let ok = Command::new("bash").arg(&provision).arg(&out).status().map(|s| s.success()).unwrap_or(false);
    if ok {
        Ok(out)
    } else {
        Err(format!("provisioning dom0 failed (see {})", out.join("provision.log").display()))
    }
}

/// Provisions dom0 (when needed) and writes its initramfs for `guests`.
pub fn prepare(guests: Vec<Guest>) -> Result<Dom0, String> {
    if guests.is_empty() {
        return Err("a dom0 boot needs a guest".into());
    }
    let mut names = BTreeSet::new();
    for g in &guests {
        check_guest(g)?;
        if !names.insert(&g.name) {
            return Err(format!("two guests named {}", g.name));
        }
    }
    let dir = provision()?;
    remove_stale_boots(&dir);
    let initrd = dir.join(format!("boot-{}.cpio", std::process::id()));
    initramfs(&dir.join("root"), &guests, &initrd)?;
    Ok(Dom0 { vmlinux: dir.join("vmlinux"), initrd, guests })
}

/// After the dom0 boot: its initramfs (a dozen MB) is removed, its whole
/// serial log saved in its place, and each guest's run cut out of the boot's
/// (see `judge::guest_runs`).
pub fn finish(d: &Dom0, boot: &Run) -> Vec<Run> {
    let _ = fs::remove_file(&d.initrd);
    let path = d.initrd.with_extension("log");
    if let Err(e) = fs::write(&path, &boot.log) {
        eprintln!("xtask: saving {}: {e}", path.display());
    }
    judge::guest_runs(d, boot, &path)
}

/// Names and command lines go into xl's config and into file names.
fn check_guest(g: &Guest) -> Result<(), String> {
    if g.name.is_empty() || !g.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(format!("guest name {:?}: use letters, digits, '-', '_' and '.'", g.name));
    }
    if g.cmdline.contains(['"', '\\', '\n']) {
        return Err(format!(
            "the command line {:?} has a quote, backslash or newline, which xl's config cannot hold",
            g.cmdline
        ));
    }
    Ok(())
}

/// The logs of earlier boots (one per xtask process) older than an hour,
/// and the initramfs of any that did not finish: kept for a look, not for
/// ever.
fn remove_stale_boots(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .map(|t| SystemTime::now().duration_since(t).unwrap_or_default() > Duration::from_secs(3600))
            .unwrap_or(false);
        if name.starts_with("boot-") && (name.ends_with(".cpio") || name.ends_with(".log")) && old {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// `rel` inside `root`, its symlinks followed inside `root` too (a package's
/// absolute link points into the package, not into this machine).
fn resolve(root: &Path, rel: &str) -> Result<PathBuf, String> {
    let mut path = rel.trim_start_matches('/').to_string();
    for _ in 0..16 {
        let p = root.join(&path);
        match fs::read_link(&p) {
            Ok(target) => {
                let t = target.to_string_lossy();
                path = if t.starts_with('/') {
                    t.trim_start_matches('/').to_string()
                } else {
                    Path::new(&path)
                        .parent()
                        .unwrap_or(Path::new(""))
                        .join(&*t)
                        .to_string_lossy()
                        .into_owned()
                };
            }
            Err(_) if p.exists() => return Ok(p),
            Err(_) => return Err(format!("{rel}: not in the provisioned packages ({})", p.display())),
        }
    }
    Err(format!("{rel}: too many symlinks"))
}

fn read(root: &Path, rel: &str) -> Result<Vec<u8>, String> {
    let p = resolve(root, rel)?;
    fs::read(&p).map_err(|e| format!("reading {}: {e}", p.display()))
}

/// The libraries `PROGRAMS` need, transitively: soname -> path in `root`.
fn libraries(root: &Path) -> Result<BTreeMap<String, String>, String> {
    let mut found = BTreeMap::new();
    let mut todo: Vec<(String, String)> = PROGRAMS.iter().map(|p| (p.to_string(), p.to_string())).collect();
    while let Some((path, what)) = todo.pop() {
        let needed = elf::needed(&read(root, &path)?).map_err(|e| format!("{path}: {e}"))?;
        for soname in needed {
            if found.contains_key(&soname) {
                continue;
            }
            let Some(lib) =
                LIB_DIRS.iter().map(|d| format!("{d}/{soname}")).find(|p| resolve(root, p).is_ok())
            else {
                return Err(format!(
                    "{soname} (needed by {what}) is in none of the provisioned packages: add its package to xtask/xen/provision-dom0.sh"
                ));
            };
            found.insert(soname, lib.clone());
            todo.push((lib, what.clone()));
        }
    }
    Ok(found)
}

/// The kernel version the modules are for: the one directory under
/// lib/modules.
fn kernel_version(root: &Path) -> Result<String, String> {
    let dir = root.join("lib/modules");
    let mut versions: Vec<String> = fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    match versions.len() {
        1 => Ok(versions.remove(0)),
        _ => Err(format!("{}: expected one kernel version, found {versions:?}", dir.display())),
    }
}

/// `MODULES` and what they depend on, dependencies first, as paths under
/// lib/modules/VERSION; modules built into the kernel are skipped.
fn modules(moddir: &Path) -> Result<Vec<String>, String> {
    let mut index = BTreeMap::new();
    let mut stack = vec![moddir.join("kernel")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Some(stem) =
                p.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".ko"))
            {
                let rel = p.strip_prefix(moddir).unwrap().to_string_lossy().into_owned();
                index.insert(stem.replace('-', "_"), rel);
            }
        }
    }
    let builtin = fs::read_to_string(moddir.join("modules.builtin")).unwrap_or_default();
    let is_builtin = |key: &str| {
        builtin.lines().any(|l| {
            l.rsplit('/').next().and_then(|f| f.strip_suffix(".ko")).map(|s| s.replace('-', "_")).as_deref()
                == Some(key)
        })
    };
    fn visit(
        name: &str,
        moddir: &Path,
        index: &BTreeMap<String, String>,
        is_builtin: &dyn Fn(&str) -> bool,
        order: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> Result<(), String> {
        let key = name.replace('-', "_");
        if !seen.insert(key.clone()) {
            return Ok(());
        }
        let Some(rel) = index.get(&key) else {
            return if is_builtin(&key) {
                Ok(())
            } else {
                Err(format!("module {name}: neither in {} nor built into the kernel", moddir.display()))
            };
        };
        let bytes = fs::read(moddir.join(rel)).map_err(|e| format!("{rel}: {e}"))?;
        for dep in elf::module_depends(&bytes) {
            visit(&dep, moddir, index, is_builtin, order, seen)?;
        }
        order.push(rel.clone());
        Ok(())
    }
    let (mut order, mut seen) = (Vec::new(), BTreeSet::new());
    for m in MODULES {
        visit(m, moddir, &index, &is_builtin, &mut order, &mut seen)?;
    }
    Ok(order)
}

/// xl's config for `g`, its kernel at `kernel` in dom0. Every way of
/// ending is "preserve": dom0 drains the console, then destroys the domain.
fn config(g: &Guest, kernel: &str) -> String {
    format!(
        "# written by cargo xtask (xtask/src/domu.rs)\n\
         # timeout = {timeout}\n\
         name = \"{name}\"\n\
         type = \"{kind}\"\n\
         kernel = \"{kernel}\"\n\
         cmdline = \"{cmdline}\"\n\
         memory = {mem}\n\
         vcpus = 1\n\
         on_poweroff = \"preserve\"\n\
         on_reboot = \"preserve\"\n\
         on_crash = \"preserve\"\n",
        timeout = g.timeout.as_secs(),
        name = g.name,
        kind = if g.pvh { "pvh" } else { "pv" },
        cmdline = g.cmdline,
        mem = g.mem_mib,
    )
}

/// Writes dom0's initramfs for `guests` to `out`: one uncompressed newc
/// archive (Linux unpacks it as fast as a compressed one under TCG).
fn initramfs(root: &Path, guests: &[Guest], out: &Path) -> Result<(), String> {
    let io = |e: std::io::Error| format!("writing {}: {e}", out.display());
    let file = fs::File::create(out).map_err(io)?;
    let mut c = Cpio::new(BufWriter::new(file));
    for d in DIRS {
        c.dir(d).map_err(io)?;
    }
    c.char_dev("/dev/console", 0o600, 5, 1).map_err(io)?;
    c.char_dev("/dev/null", 0o666, 1, 3).map_err(io)?;
    // xl and xenconsoled lock files in /var/run and /var/lock.
    c.symlink("/var/run", "/run").map_err(io)?;
    c.symlink("/var/lock", "/run/lock").map_err(io)?;
    let init = fs::read(script("dom0-init")).map_err(|e| format!("xtask/xen/dom0-init: {e}"))?;
    c.file("/init", 0o755, &init).map_err(io)?;
    // busybox: the init makes the applets' links itself (`--install`).
    c.file("/bin/busybox", 0o755, &read(root, "bin/busybox")?).map_err(io)?;
    c.symlink("/bin/sh", "busybox").map_err(io)?;
    for p in PROGRAMS {
        c.file(&format!("/{p}"), 0o755, &read(root, p)?).map_err(io)?;
    }
    for l in XENSTORE_LINKS {
        c.symlink(&format!("/usr/bin/{l}"), "xenstore").map_err(io)?;
    }
    for lib in libraries(root)?.values().map(String::as_str).chain(DLOPENED.iter().copied()) {
        c.file(&format!("/{lib}"), 0o755, &read(root, lib)?).map_err(io)?;
    }
    c.symlink(&format!("/{}", INTERP.0), INTERP.1).map_err(io)?;
    let kver = kernel_version(root)?;
    let moddir = root.join("lib/modules").join(&kver);
    let mut order = String::new();
    for m in modules(&moddir)? {
        let path = format!("/lib/modules/{kver}/{m}");
        c.file(&path, 0o644, &fs::read(moddir.join(&m)).map_err(|e| format!("{m}: {e}"))?).map_err(io)?;
        order.push_str(&path);
        order.push('\n');
    }
    c.file("/etc/dom0-modules", 0o644, order.as_bytes()).map_err(io)?;
    // dom0's memory is fixed (dom0_mem): xl must not balloon it.
    c.file("/etc/xen/xl.conf", 0o644, b"autoballoon = \"off\"\n").map_err(io)?;

    // The guests: their kernels once each, their configs in run order.
    let mut images: BTreeMap<&Path, String> = BTreeMap::new();
    for (i, g) in guests.iter().enumerate() {
        let n = images.len();
        let image = images.entry(g.kernel.as_path()).or_insert_with(|| {
            let base = g.kernel.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            format!("/guests/images/{n}-{base}")
        });
        let image = image.clone();
        if images.len() > n {
            let data = fs::read(&g.kernel).map_err(|e| format!("reading {}: {e}", g.kernel.display()))?;
            c.file(&image, 0o644, &data).map_err(io)?;
        }
        c.file(&format!("/guests/{:02}-{}.cfg", i + 1, g.name), 0o644, config(g, &image).as_bytes())
            .map_err(io)?;
    }
    c.finish().map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest(name: &str, cmdline: &str) -> Guest {
        Guest {
            name: name.into(),
            pvh: true,
            kernel: "k.elf".into(),
            mem_mib: 128,
            cmdline: cmdline.into(),
            timeout: Duration::from_secs(30),
        }
    }

    #[test]
    fn configs() {
        let c = config(&guest("xen-domu-pvh-128M", "fault=pf paging=pae"), "/guests/images/0-k.elf");
        for line in [
            "# timeout = 30",
            "name = \"xen-domu-pvh-128M\"",
            "type = \"pvh\"",
            "kernel = \"/guests/images/0-k.elf\"",
            "cmdline = \"fault=pf paging=pae\"",
            "memory = 128",
            "on_crash = \"preserve\"",
        ] {
            assert!(c.lines().any(|l| l == line), "{line:?} missing in\n{c}");
        }
        assert!(check_guest(&guest("a b", "")).is_err());
        assert!(check_guest(&guest("ok", "say \"hi\"")).is_err());
        assert!(check_guest(&guest("ok-1.x_y", "a=b,c")).is_ok());
    }

    #[test]
    fn symlinks_stay_inside_the_root() {
        let root = std::env::temp_dir().join(format!("domu-resolve-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("lib/x86_64-linux-gnu")).unwrap();
        fs::create_dir_all(root.join("lib64")).unwrap();
        fs::write(root.join("lib/x86_64-linux-gnu/ld.so"), b"ld").unwrap();
        std::os::unix::fs::symlink("/lib/x86_64-linux-gnu/ld.so", root.join("lib64/ld.so")).unwrap();
        std::os::unix::fs::symlink("ld.so", root.join("lib/x86_64-linux-gnu/ld.so.2")).unwrap();
        assert_eq!(read(&root, "lib64/ld.so").unwrap(), b"ld");
        assert_eq!(read(&root, "lib/x86_64-linux-gnu/ld.so.2").unwrap(), b"ld");
        assert!(read(&root, "lib/nothing").is_err());
        fs::remove_dir_all(&root).unwrap();
    }
}
