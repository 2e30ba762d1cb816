//! Adding a backend, proven the way a user does it, in a scratch copy of
//! the tree (target/scaffold-check/tree, built into its own target
//! directory):
//!
//! 1. `new-backend kvm --cpuid TCGTCGTCGTCG`: a backend that detects QEMU's
//!    TCG by its CPUID signature. An image with it (`native,kvm`) boots
//!    under QEMU, chooses it by probing over native, and builds its
//!    pagetable through the native defaults; `hypervisor=native` still
//!    forces native.
//! 2. `new-backend demo --default`: a backend that detects nothing, added
//!    to the default image. The matrix rows that broke when a backend was
//!    added that way (every native row asserted the registry's exact
//!    contents) run on that image, unchanged, and pass; so do the other
//!    environments' probing rows.

use std::path::{Path, PathBuf};
use std::process::Command;

use pvops_tests::{matrix, BootCase, Env, Expect, TimeTest, Want};

use crate::boot::Boot;
use crate::build::{self, Opts};
use crate::scaffold::{self, Options};

/// The rows of the check, and the boots they need.
pub fn prepare(
    filter: Option<&str>,
    hypervisor: impl Fn(Env) -> Result<Option<PathBuf>, String>,
) -> Result<Vec<(BootCase, Boot)>, String> {
    let rows = rows();
    if !rows.iter().any(|c| filter.is_none_or(|f| c.name.contains(f))) {
        return Ok(Vec::new());
    }
    println!("xtask: scaffold check: copying the tree, adding two backends, building their images");
    let dir = build::root().join("target/scaffold-check");
    let tree = dir.join("tree");
    copy_tree(&build::root(), &tree)?;
    scaffold::scaffold(
        &tree,
        &Options { name: "kvm".into(), cpuid: Some("TCGTCGTCGTCG".into()), default: false },
    )?;
    scaffold::scaffold(&tree, &Options { name: "demo".into(), cpuid: None, default: true })?;
    let target = dir.join("target");
    let with_kvm = Opts { features: Some("native,kvm".into()), no_default_features: true, release: false };
    let kvm_image = build::image_in(&tree, &target, "kernel", &with_kvm)?;
    let default_image = build::image_in(&tree, &target, "kernel", &Opts::default())?;
    let mut boots = Vec::new();
    for c in rows.into_iter().filter(|c| filter.is_none_or(|f| c.name.contains(f))) {
        let mut kernel = if c.features.is_some() { kvm_image.clone() } else { default_image.clone() };
        if c.env == Env::QemuPvh {
            kernel = build::pvh_copy(&kernel)?;
        }
        let b = crate::test::boot_for(&c, kernel, None, hypervisor(c.env)?);
        boots.push((c, b));
    }
    Ok(boots)
}

const KVM_CHOSEN: Expect = Expect {
    backend: Some("kvm"),
    paging: Some("PAE"),
    result: Want::Success,
    lines: &[
        "candidate kvm: detected, priority 10 (CPUID signature TCGTCGTCGTCG)",
        "candidate native: detected, priority 0",
        "backend: kvm (highest priority detected)",
        "selfcheck: ok",
        "runtime: kmap_atomic, and an address space",
    ],
    absent: &[],
    checks: &[],
};

fn rows() -> Vec<BootCase> {
    let base = BootCase {
        name: "scaffold-kvm-chosen-by-cpuid",
        env: Env::Qemu,
        cpu: "max",
        mem: "128M",
        append: "",
        features: Some("native,kvm"),
        time: TimeTest::Short,
        expect: KVM_CHOSEN,
    };
    let mut m = vec![
        base,
        BootCase {
            name: "scaffold-kvm-native-forced",
            append: "hypervisor=native",
            expect: Expect {
                backend: Some("native"),
                lines: &[
                    "candidate kvm: detected",
                    "backend: native (forced by hypervisor=)",
                    "selfcheck: ok",
                ],
                ..KVM_CHOSEN
            },
            ..base
        },
    ];
    // The default image, now with `demo` in it: the rows that assert what
    // probing chose, unchanged.
    for c in matrix() {
        if c.name.starts_with("native-pentium-") || c.name.starts_with("three-ways") || c.name == "lguest-32M"
        {
            let name: &'static str = Box::leak(format!("scaffold-demo-{}", c.name).into_boxed_str());
            m.push(BootCase { name, ..c });
        }
    }
    m
}

/// Copies the files git knows (tracked, and untracked but not ignored)
/// from `from` to a fresh `to`.
fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    if to.exists() {
        std::fs::remove_dir_all(to).map_err(|e| format!("removing {}: {e}", to.display()))?;
    }
    let out = Command::new("git")
        .current_dir(from)
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .output()
        .map_err(|e| format!("running git ls-files: {e}"))?;
    if !out.status.success() {
        return Err("git ls-files failed: the scaffold check needs the project's git tree".into());
    }
    for name in out.stdout.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let rel = Path::new(std::str::from_utf8(name).map_err(|e| e.to_string())?);
        let src = from.join(rel);
        if !src.is_file() {
            continue; // deleted in the work tree
        }
        let dst = to.join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).map_err(|e| e.to_string())?;
        std::fs::copy(&src, &dst).map_err(|e| format!("copying {}: {e}", src.display()))?;
    }
    Ok(())
}
