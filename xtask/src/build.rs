//! Building the bare-metal images: the kernel (with chosen backends), the
//! user programs it embeds, and the test loaders, for the custom i686
//! target with build-std.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Opts {
    pub release: bool,
    /// Comma-separated kernel features; None means the default set.
    pub features: Option<String>,
    pub no_default_features: bool,
}

impl Opts {
    /// A file-name-safe tag for this configuration.
    fn tag(&self) -> String {
        let mut t = String::new();
        if self.no_default_features {
            t.push_str("nodef-");
        }
        match &self.features {
            Some(f) => t.push_str(&f.replace([',', ' '], "+")),
            None => t.push_str("default"),
        }
        t.push_str(if self.release { "-release" } else { "-debug" });
        t
    }
}

/// How every bare-metal crate is built: the custom i686 target (no SSE,
/// soft-float) and core built from source.
pub const KERNEL_TARGET_ARGS: &[&str] = &[
    "--target",
    "targets/i686-pvops.json",
    "-Zbuild-std=core,compiler_builtins",
    "-Zbuild-std-features=compiler-builtins-mem",
    "-Zjson-target-spec",
];

pub fn root() -> PathBuf {
    // xtask lives in <root>/xtask.
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Builds `package` for the kernel target; returns a copy of the binary
/// under target/images/ named after the configuration, so images of
/// different feature sets can coexist.
pub fn image(package: &str, opts: &Opts) -> Result<PathBuf, String> {
    image_in(&root(), &root().join("target"), package, opts)
}

/// `image`, for the source tree at `root` with its build in `target`.
pub fn image_in(root: &Path, target: &Path, package: &str, opts: &Opts) -> Result<PathBuf, String> {
    let mut cmd = crate::toolchain::cargo()?;
    cmd.current_dir(root).env("CARGO_TARGET_DIR", target).args(["build", "--quiet", "--package", package]);
    cmd.args(KERNEL_TARGET_ARGS);
    if opts.release {
        cmd.arg("--release");
    }
    if package == "kernel" {
        cmd.env(USER_PROGRAMS_ENV, user_programs(root, target)?);
        if opts.no_default_features {
            cmd.arg("--no-default-features");
        }
        if let Some(f) = &opts.features {
            cmd.args(["--features", f]);
        }
    }
    let status = cmd.status().map_err(|e| format!("running cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building {package} failed"));
    }
    let profile = if opts.release { "release" } else { "debug" };
    let built = target.join("i686-pvops").join(profile).join(package);
    let dir = target.join("images");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let tag = if package == "kernel" { opts.tag() } else { profile.to_string() };
    let out = dir.join(format!("{package}-{tag}.elf"));
    std::fs::copy(&built, &out).map_err(|e| format!("copying {}: {e}", built.display()))?;
    Ok(out)
}

/// Where the kernel's build finds the user programs it embeds
/// (`kernel/src/programs.rs`): an absolute directory.
pub const USER_PROGRAMS_ENV: &str = "PVOPS_USER_PROGRAMS";

/// Trees whose user programs this run of xtask has built and checked
/// (every kernel configuration embeds the same ones).
static USER_PROGRAMS_BUILT: Mutex<Vec<(PathBuf, PathBuf)>> = Mutex::new(Vec::new());

/// Builds `user/programs` of the tree at `root` into `target` (release,
/// always: they are embedded in debug kernels too), checks every program
/// is one the kernel can load (`user_elf`), and returns their directory.
pub fn user_programs(root: &Path, target: &Path) -> Result<PathBuf, String> {
    let target = std::path::absolute(target).map_err(|e| format!("{}: {e}", target.display()))?;
    let dir = target.join("i686-pvops").join("release");
    let key = (root.to_path_buf(), target.clone());
    let mut built = USER_PROGRAMS_BUILT.lock().unwrap();
    if built.contains(&key) {
        return Ok(dir);
    }
    let status = crate::toolchain::cargo()?
        .current_dir(root)
        .env("CARGO_TARGET_DIR", &target)
        .args(["build", "--quiet", "--package", "user-programs", "--release"])
        .args(KERNEL_TARGET_ARGS)
        .status()
        .map_err(|e| format!("running cargo: {e}"))?;
    if !status.success() {
        return Err("building the user programs failed".into());
    }
    let manifest = root.join("user/programs/Cargo.toml");
    let names = program_names(
        &std::fs::read_to_string(&manifest).map_err(|e| format!("{}: {e}", manifest.display()))?,
    );
    for name in &names {
        let path = dir.join(name);
        let elf = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        crate::user_elf::check(&elf).map_err(|e| format!("user program {name} ({}): {e}", path.display()))?;
    }
    println!(
        "xtask: user programs built and checked (static i386 executables at 0x08048000): {}",
        names.join(", ")
    );
    built.push(key);
    Ok(dir)
}

/// The `[[bin]]` names of a Cargo manifest, in order.
fn program_names(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if let Some(value) =
            line.strip_prefix("name").map(str::trim_start).and_then(|l| l.strip_prefix('='))
        {
            if in_bin {
                names.push(value.trim().trim_matches('"').to_string());
            }
        }
    }
    names
}

/// A copy of `image` that QEMU boots through its PVH entry: the multiboot
/// magic in the first 8 KiB zeroed (QEMU tries multiboot first and offers
/// no switch). Nothing else changes.
pub fn pvh_copy(image: &Path) -> Result<PathBuf, String> {
    let mut bytes = std::fs::read(image).map_err(|e| format!("reading {}: {e}", image.display()))?;
    let magic = 0x1BAD_B002u32.to_le_bytes();
    let window = bytes.len().min(8192);
    let at = bytes[..window].windows(4).position(|w| w == magic).ok_or("no multiboot header in the image")?;
    bytes[at..at + 4].fill(0);
    let out = image.with_extension("pvh.elf");
    std::fs::write(&out, bytes).map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_programs_are_the_manifests_bins() {
        let manifest = "[package]\nname = \"user-programs\"\n\n[lib]\npath = \"src/lib.rs\"\n\n\
                        [[bin]]\nname = \"init\"\npath = \"x\"\n\n[[bin]]\nname=\"bad-ud2\"\n\n\
                        [dependencies]\nname = \"not-a-bin\"\n";
        assert_eq!(program_names(manifest), ["init", "bad-ud2"]);
    }

    /// The kernel embeds every program the crate builds (a program left
    /// out could not be spawned), and each one only once.
    #[test]
    fn every_program_is_embedded() {
        let manifest = std::fs::read_to_string(root().join("user/programs/Cargo.toml")).unwrap();
        let table = std::fs::read_to_string(root().join("kernel/src/programs.rs")).unwrap();
        let embedded: Vec<&str> = table
            .split("embed!(\"")
            .skip(1)
            .filter_map(|s| s.split_once('"'))
            .map(|(name, _)| name)
            .collect();
        let mut programs = program_names(&manifest);
        assert!(!programs.is_empty());
        programs.sort();
        let mut sorted = embedded.clone();
        sorted.sort();
        assert_eq!(programs, sorted, "kernel/src/programs.rs embeds {embedded:?}");
    }
}
