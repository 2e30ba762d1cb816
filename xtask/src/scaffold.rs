//! `cargo xtask new-backend NAME`: a new backend crate, registered and
//! wired into the kernel's features, ready to boot (it detects nothing
//! until its `detect` says otherwise). The steps README's "Adding a
//! backend" describes, done for you; `mm` and the other backends are not
//! touched.

use std::fs;
use std::path::Path;

use crate::{build, EXIT_SETUP};

fn lib_rs(name: &str, ty: &str) -> String {
    format!(
        r#"//! {name}: a pvops backend.
//!
//! Every `Hypervisor` method defaults to native behaviour; override only
//! what this platform does differently (entry writes, TLB flushes, the
//! console, shutdown, `pagetable_setup_start/done`, `alloc_pt`, ...).

#![no_std]

use linkme::distributed_slice;
use paravirt::{{BootInfo, Hypervisor, Verdict, HYPERVISORS}};

pub struct {ty};

impl Hypervisor for {ty} {{
    fn name(&self) -> &'static str {{
        "{name}"
    }}

    fn detect(&self, _boot: &BootInfo) -> Verdict {{
        // Look at the boot protocol, the CPUID hypervisor leaves
        // (`boot.cpu.hypervisor_leaves()`) or the command line, and answer
        // Ok(Detected {{ priority, why }}) when this is the platform.
        Err("not written yet")
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

fn scaffold(name: &str) -> Result<(), String> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err(format!("{name:?}: use lowercase letters, digits and '-'"));
    }
    let root = build::root();
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
    fs::write(krate.join("src/lib.rs"), lib_rs(name, &ty)).map_err(|e| e.to_string())?;
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
        insert_after(
            &t,
            "backend-lguest = { workspace = true, optional = true }",
            &format!("backend-{name} = {{ workspace = true, optional = true }}"),
        )
    })?;
    edit(&root.join("kernel/src/main.rs"), |t| Ok(add_use(t, name, &ident)))?;
    println!(
        "created crates/backend-{name} (struct {ty}), registered in the kernel behind feature `{name}`."
    );
    println!("next: write its detect(), add it to the kernel's default features if it should be in every");
    println!("image, add its rows to tests/src/matrix.rs, and try it:");
    println!("  cargo xtask run --features native,{name} --append hypervisor={name}");
    Ok(())
}

pub fn main(args: &[String]) -> u8 {
    match args {
        [name] => match scaffold(name) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("xtask new-backend: {e}");
                EXIT_SETUP
            }
        },
        _ => {
            eprintln!("usage: cargo xtask new-backend NAME");
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
        let src = lib_rs("my-hv", "MyHv");
        assert!(src.contains("impl Hypervisor for MyHv"));
        assert!(src.contains("\"my-hv\""));
    }
}
