//! `cargo xtask new-backend NAME [--cpuid SIGNATURE] [--default]`: a new
//! backend crate, registered and wired into the kernel's features, ready
//! to boot. Without `--cpuid` it detects nothing until its `detect` says
//! otherwise; with it, it detects a CPU whose hypervisor CPUID leaves carry
//! that 12-character signature (QEMU's TCG says `TCGTCGTCGTCG`, KVM
//! `KVMKVMKVM\0\0\0`). `--default` also adds it to the kernel's default
//! features. The steps README's "Adding a backend" describes, done for
//! you: the crate, the root `Cargo.toml` (member, default member,
//! dependency), the kernel's `Cargo.toml` (optional dependency, feature,
//! and with `--default` the default list) and `kernel/src/main.rs` (the
//! `use` that links it). `mm` and the other backends are not touched.

use std::fs;
use std::path::Path;

use crate::{build, EXIT_SETUP};

fn lib_rs(name: &str, ty: &str, cpuid: Option<&str>) -> String {
    let (imports, detect) = match cpuid {
        None => (
            "use paravirt::{BootInfo, Hypervisor, Verdict, HYPERVISORS};".to_string(),
            r#"        // Look at the boot protocol, the CPUID hypervisor leaves
        // (`boot.cpu.hypervisor_leaves()`) or the command line, and answer
        // Ok(Detected { priority, why }) when this is the platform.
        let _ = boot;
        Err("not written yet")"#
                .to_string(),
        ),
        Some(sig) => (
            "use paravirt::{BootInfo, Detected, Hypervisor, Verdict, HYPERVISORS};".to_string(),
            format!(
                r#"        // CPUID evidence: above native (0), below a boot protocol (100).
        match boot.cpu.find_hypervisor(SIGNATURE) {{
            Some(_) => Ok(Detected {{ priority: 10, why: "CPUID signature {sig}" }}),
            None => Err("no {sig} signature in the CPUID hypervisor leaves"),
        }}"#
            ),
        ),
    };
    let signature = cpuid.map(|s| format!("\n/// The CPUID hypervisor signature this backend answers to.\nconst SIGNATURE: &[u8; 12] = b\"{s}\";\n")).unwrap_or_default();
    format!(
        r#"//! {name}: a pvops backend.
//!
//! Every hook defaults to native behaviour: the platform methods here, and
//! the groups (`paging()`, `mmu()`, `cpu()`) the native ones. Override
//! only what this platform does differently: return a group of your own
//! from `mmu()` for entry writes, TLB flushes, `pagetable_setup_start/
//! done`, `alloc_pt`...; the console and shutdown here.

#![no_std]

use linkme::distributed_slice;
{imports}

pub struct {ty};
{signature}
impl Hypervisor for {ty} {{
    fn name(&self) -> &'static str {{
        "{name}"
    }}

    fn detect(&self, boot: &BootInfo) -> Verdict {{
{detect}
    }}
}}

#[distributed_slice(HYPERVISORS)]
static BACKEND: &'static dyn Hypervisor = &{ty};
"#
    )
}

fn cargo_toml(name: &str) -> String {
    format!(
        r#"[package]
name = "backend-{name}"
version.workspace = true
edition.workspace = true
license.workspace = true

[dependencies]
arch-i386.workspace = true
paravirt.workspace = true
linkme.workspace = true
log.workspace = true
"#
    )
}

/// Inserts `line` after the first line of `text` that contains `anchor`.
fn insert_after(text: &str, anchor: &str, line: &str) -> Result<String, String> {
    let at = text.find(anchor).ok_or(format!("no line containing {anchor:?}"))?;
    let eol = text[at..].find('\n').map(|i| at + i + 1).unwrap_or(text.len());
    Ok(format!("{}{}\n{}", &text[..eol], line, &text[eol..]))
}

/// Adds `#[cfg(feature = "name")] use backend_ident as _;` among the
/// kernel's backend `use` lines, in the order rustfmt keeps them (sorted).
fn add_use(text: &str, name: &str, ident: &str) -> String {
    let new = format!("#[cfg(feature = \"{name}\")]\nuse backend_{ident} as _;\n");
    let mut lines: Vec<&str> = text.lines().collect();
    let uses: Vec<usize> = (1..lines.len())
        .filter(|&i| lines[i].starts_with("use backend_") && lines[i - 1].starts_with("#[cfg(feature"))
        .collect();
    let at = uses
        .iter()
        .find(|&&i| lines[i] > format!("use backend_{ident} as _;").as_str())
        .map(|&i| i - 1)
        .or(uses.last().map(|&i| i + 1))
        .unwrap_or(0);
    lines.insert(at, new.trim_end());
    lines.join("\n") + "\n"
}

fn edit(path: &Path, f: impl FnOnce(&str) -> Result<String, String>) -> Result<(), String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    fs::write(path, f(&text)?).map_err(|e| format!("{}: {e}", path.display()))
}

pub struct Options {
    pub name: String,
    pub cpuid: Option<String>,
    pub default: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options { name: String::new(), cpuid: None, default: false };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--cpuid" => {
                let sig = it.next().ok_or("--cpuid needs a 12-character signature")?;
                if sig.len() != 12 || !sig.chars().all(|c| c.is_ascii_graphic()) {
                    return Err(format!(
                        "--cpuid {sig:?}: a CPUID signature is 12 printable ASCII characters"
                    ));
                }
                o.cpuid = Some(sig.clone());
            }
            "--default" => o.default = true,
            n if !n.starts_with('-') && o.name.is_empty() => o.name = n.to_string(),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if o.name.is_empty() {
        return Err("a backend name is needed".into());
    }
    Ok(o)
}

/// Creates the backend crate and wires it in, in the tree at `root`.
pub fn scaffold(root: &Path, o: &Options) -> Result<(), String> {
    let name = o.name.as_str();
    if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err(format!("{name:?}: use lowercase letters, digits and '-'"));
    }
    let krate = root.join("crates").join(format!("backend-{name}"));
    if krate.exists() {
        return Err(format!("{} exists already", krate.display()));
    }
    let ident = name.replace('-', "_");
    let ty: String = name
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect();
    fs::create_dir_all(krate.join("src")).map_err(|e| e.to_string())?;
    fs::write(krate.join("Cargo.toml"), cargo_toml(name)).map_err(|e| e.to_string())?;
    fs::write(krate.join("src/lib.rs"), lib_rs(name, &ty, o.cpuid.as_deref())).map_err(|e| e.to_string())?;
    let member = format!("    \"crates/backend-{name}\",");
    // Workspace: a member, a default member (host-checked), a dependency.
    edit(&root.join("Cargo.toml"), |t| {
        let t = insert_after(t, "    \"crates/backend-lguest\",", &member)?;
        // The second occurrence is in default-members.
        let second = t
            .match_indices("    \"crates/backend-lguest\",")
            .nth(1)
            .map(|(i, _)| i)
            .ok_or("default-members")?;
        let t = format!("{}{}\n{}", &t[..second], member, &t[second..]);
        insert_after(
            &t,
            "backend-lguest = { path",
            &format!("backend-{name} = {{ path = \"crates/backend-{name}\" }}"),
        )
    })?;
    // Kernel: a feature that links the crate, and the `use` that keeps it.
    edit(&root.join("kernel/Cargo.toml"), |t| {
        let t = insert_after(
            t,
            "lguest = [\"dep:backend-lguest\"]",
            &format!("{name} = [\"dep:backend-{name}\"]"),
        )?;
        let t = if o.default { add_default_feature(&t, name)? } else { t };
        insert_after(
            &t,
            "backend-lguest = { workspace = true, optional = true }",
            &format!("backend-{name} = {{ workspace = true, optional = true }}"),
        )
    })?;
    edit(&root.join("kernel/src/main.rs"), |t| Ok(add_use(t, name, &ident)))?;
    println!(
        "created crates/backend-{name} (struct {ty}), registered in the kernel behind feature `{name}`{}.",
        if o.default { ", which is now a default feature" } else { "" }
    );
    match &o.cpuid {
        Some(sig) => println!("it detects CPUID signature {sig} (priority 10); try it:"),
        None => println!("next: write its detect(), add its rows to tests/src/matrix.rs, and try it:"),
    }
    println!("  cargo xtask run --features native,{name}");
    Ok(())
}

/// `default = ["native", ...]` gains `name`.
fn add_default_feature(text: &str, name: &str) -> Result<String, String> {
    let at = text.find("default = [").ok_or("no default feature list in kernel/Cargo.toml")?;
    let close = at + text[at..].find(']').ok_or("unterminated default feature list")?;
    Ok(format!("{}, \"{name}\"{}", &text[..close], &text[close..]))
}

pub fn main(args: &[String]) -> u8 {
    match parse(args).and_then(|o| scaffold(&build::root(), &o)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("xtask new-backend: {e}");
            eprintln!("usage: cargo xtask new-backend NAME [--cpuid SIGNATURE] [--default]");
            EXIT_SETUP
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_after_the_anchor_line() {
        let t = "a\nb = 1\nc\n";
        assert_eq!(insert_after(t, "b =", "x").unwrap(), "a\nb = 1\nx\nc\n");
        assert!(insert_after(t, "zzz", "x").is_err());
    }

    #[test]
    fn use_lines_stay_sorted() {
        let t = "#![no_std]\n\n#[cfg(feature = \"lguest\")]\nuse backend_lguest as _;\n#[cfg(feature = \"xen\")]\nuse backend_xen as _;\n\nmod boot;\n";
        let out = add_use(t, "demo", "demo");
        assert!(out.contains("#![no_std]\n\n#[cfg(feature = \"demo\")]\nuse backend_demo as _;\n#[cfg(feature = \"lguest\")]"), "{out}");
        let out = add_use(t, "zz", "zz");
        assert!(
            out.contains(
                "use backend_xen as _;\n#[cfg(feature = \"zz\")]\nuse backend_zz as _;\n\nmod boot;"
            ),
            "{out}"
        );
    }

    #[test]
    fn generated_crate_names_its_type() {
        let src = lib_rs("my-hv", "MyHv", None);
        assert!(src.contains("impl Hypervisor for MyHv"));
        assert!(src.contains("\"my-hv\""));
        let src = lib_rs("kvm", "Kvm", Some("KVMKVMKVMabc"));
        assert!(src.contains("b\"KVMKVMKVMabc\""));
        assert!(src.contains("find_hypervisor(SIGNATURE)"));
    }

    #[test]
    fn options_and_default_features() {
        let o = parse(&["kvm".into(), "--cpuid".into(), "TCGTCGTCGTCG".into(), "--default".into()]).unwrap();
        assert_eq!((o.name.as_str(), o.cpuid.as_deref(), o.default), ("kvm", Some("TCGTCGTCGTCG"), true));
        assert!(parse(&["kvm".into(), "--cpuid".into(), "short".into()]).is_err());
        assert!(parse(&[]).is_err());
        let t = "[features]\ndefault = [\"native\", \"xen\"]\n";
        assert_eq!(
            add_default_feature(t, "kvm").unwrap(),
            "[features]\ndefault = [\"native\", \"xen\", \"kvm\"]\n"
        );
    }
}
