//! `cargo xtask bench --compare REF`: the same rows booted with a git
//! ref's kernel and lguest host next to the work tree's, and every figure
//! that differs printed with its change, so a change that costs
//! instructions is seen before it lands.
//!
//! The ref is checked out into a temporary worktree under
//! `target/compare/` (removed once built; its build directory,
//! `target/compare/target`, stays for the next comparison), built with
//! the work tree's xtask (the same build options), and booted with the
//! work tree's rows, Xen and QEMU. Its figures are not gated; wall time is
//! shown only as the ratio of the two trees' medians.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bench::Result;
use crate::build;

/// A ref's images.
pub struct Ref {
    /// As given, and the commit it named.
    pub name: String,
    pub commit: String,
    pub kernel: PathBuf,
    pub lguest_host: PathBuf,
}

fn git(dir: &Path, args: &[&str]) -> std::result::Result<String, String> {
    let out =
        Command::new("git").current_dir(dir).args(args).output().map_err(|e| format!("running git: {e}"))?;
    if !out.status.success() {
        return Err(format!("git {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Checks `name` out into a temporary worktree, builds its kernel (as the
/// bench builds the work tree's) and lguest host, and removes the
/// worktree.
pub fn build_ref(name: &str) -> std::result::Result<Ref, String> {
    let root = build::root();
    let commit = git(&root, &["rev-parse", "--verify", &format!("{name}^{{commit}}")])?;
    let base = root.join("target/compare");
    let src = base.join("src");
    // A worktree left by an interrupted comparison.
    if src.exists() {
        let _ = git(&root, &["worktree", "remove", "--force", &src.to_string_lossy()]);
        let _ = std::fs::remove_dir_all(&src);
    }
    let _ = git(&root, &["worktree", "prune"]);
    std::fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
    println!(
        "xtask: bench --compare: building {name} ({}) in {}",
        &commit[..12.min(commit.len())],
        src.display()
    );
    git(&root, &["worktree", "add", "--detach", &src.to_string_lossy(), &commit])?;
    let target = base.join("target");
    let built = (|| {
        let kernel =
            build::image_in(&src, &target, "kernel", &build::Opts { release: true, ..Default::default() })?;
        let host = build::image_in(
            &src,
            &target,
            "lguest-host",
            &build::Opts { release: true, ..Default::default() },
        )?;
        Ok::<_, String>((kernel, host))
    })();
    let removed = git(&root, &["worktree", "remove", "--force", &src.to_string_lossy()]);
    let (kernel, lguest_host) = built.map_err(|e| format!("{name}: {e}"))?;
    removed?;
    // Copies of their own: the work tree's images live elsewhere, but a
    // later build of another ref would overwrite these names.
    let keep = |p: &Path, what: &str| -> std::result::Result<PathBuf, String> {
        let out = base.join(format!("{what}-{}.elf", &commit[..12.min(commit.len())]));
        std::fs::copy(p, &out).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(out)
    };
    Ok(Ref {
        name: name.to_string(),
        kernel: keep(&kernel, "kernel")?,
        lguest_host: keep(&lguest_host, "lguest-host")?,
        commit,
    })
}

/// "+1234 (+5.67%)".
fn delta(old: i64, new: i64) -> String {
    let d = new - old;
    if old == 0 {
        return format!("{d:+}");
    }
    format!("{d:+} ({:+.2}%)", d as f64 * 100.0 / old as f64)
}

/// Prints, row by row, every figure whose value differs between the ref
/// and the work tree (and those only one of them prints), and the wall
/// ratio; a row the ref could not boot, with why.
pub fn print(r: &Ref, old: &[std::result::Result<Result, String>], new: &[Result]) {
    println!("\ncompare: {} ({}) -> the work tree", r.name, &r.commit[..12.min(r.commit.len())]);
    println!(
        "{:<18} {:>5} {:<36} {:>14} {:>14} {:>24}",
        "row", "mem", "figure", "ref", "work tree", "change"
    );
    let mut same = 0;
    for (a, b) in old.iter().zip(new) {
        let a = match a {
            Ok(a) => a,
            Err(e) => {
                println!("{:<18} {:>5} the ref did not boot: {e}", b.row.name, b.mem);
                continue;
            }
        };
        let keys: BTreeSet<&String> = a.perf.keys().chain(b.perf.keys()).collect();
        for k in keys {
            let show = |v: Option<&i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
            let (x, y) = (a.perf.get(k), b.perf.get(k));
            let change = match (x, y) {
                (Some(x), Some(y)) if x == y => {
                    same += 1;
                    continue;
                }
                (Some(&x), Some(&y)) => delta(x, y),
                (None, _) => "new".into(),
                (_, None) => "gone".into(),
            };
            println!(
                "{:<18} {:>5} {:<36} {:>14} {:>14} {:>24}",
                b.row.name,
                b.mem,
                k,
                show(x),
                show(y),
                change
            );
        }
        let det = match (a.deterministic, b.deterministic) {
            (true, true) => String::new(),
            _ => format!(" (NOT deterministic: ref {}, work tree {})", a.deterministic, b.deterministic),
        };
        println!(
            "{:<18} {:>5} {:<36} {:>14} {:>14} {:>24}{det}",
            b.row.name,
            b.mem,
            "wall (work tree / ref, report)",
            "",
            "",
            format!("{:.2}", b.wall.as_secs_f64() / a.wall.as_secs_f64())
        );
    }
    println!("{same} figures the same in both");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_shown_absolute_and_relative() {
        assert_eq!(delta(1000, 1100), "+100 (+10.00%)");
        assert_eq!(delta(25_276_778, 10_588), "-25266190 (-99.96%)");
        assert_eq!(delta(0, 7), "+7");
    }
}
