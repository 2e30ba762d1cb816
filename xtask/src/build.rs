//! Building the bare-metal images: the kernel (with chosen backends) and
//! the test loaders, for the custom i686 target with build-std.

use std::path::{Path, PathBuf};

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
