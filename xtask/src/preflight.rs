//! What a boot needs of its options, checked before anything is built or
//! booted, so that a mismatch is a clear set-up error (exit status 5), not
//! a hypervisor's panic, a hang until a watchdog, or a CRASH with an empty
//! log:
//!
//! - the image must hold the backend its environment enters: Xen's entry
//!   (its ELF notes, the `xen` backend) is in the image only with the
//!   kernel feature `xen`, lguest's backend only with `lguest`;
//! - the CPU model must be one the hypervisor runs on: Xen is a 64-bit
//!   hypervisor (long mode), and a PVH dom0 or domU also needs QEMU's
//!   only hardware virtualization, SVM with nested paging. QEMU itself
//!   says what a model has (`query-cpu-model-expansion`), so `+`/`-`
//!   feature suffixes count too.

use std::io::Write;
use std::process::{Command, Stdio};

use pvops_tests::Env;

use crate::build;

/// The kernel feature whose backend `env` needs, and what it provides.
fn needed_feature(env: Env) -> Option<(&'static str, &'static str)> {
    match env {
        Env::Xen | Env::XenDomu => Some(("xen", "Xen PV entry")),
        Env::XenPvh | Env::XenPvhDomu => Some(("xen", "Xen PVH backend (xen-hvm)")),
        Env::Lguest | Env::LguestLie(_) => Some(("lguest", "lguest backend")),
        _ => None,
    }
}

/// The kernel features an image is built with: the default list in
/// `kernel_toml` unless `no_default`, plus `extra` (cargo's syntax: commas
/// or spaces).
pub fn features(kernel_toml: &str, opts: &build::Opts) -> Vec<String> {
    let mut f = Vec::new();
    if !opts.no_default_features {
        let list = kernel_toml
            .lines()
            .find_map(|l| l.trim().strip_prefix("default = ["))
            .and_then(|l| l.split(']').next())
            .unwrap_or("");
        f.extend(list.split(',').map(|s| s.trim().trim_matches('"').to_string()));
    }
    if let Some(extra) = &opts.features {
        f.extend(extra.split([',', ' ']).map(str::to_string));
    }
    f.retain(|s| !s.is_empty());
    f
}

/// Err if the image `opts` builds cannot be entered in `env`.
pub fn image_fits(env: Env, kernel_toml: &str, opts: &build::Opts) -> Result<(), String> {
    let Some((feature, what)) = needed_feature(env) else { return Ok(()) };
    let have = features(kernel_toml, opts);
    if have.iter().any(|f| f == feature) {
        return Ok(());
    }
    let mut with = have.clone();
    with.push(feature.to_string());
    Err(format!(
        "--env {}: this image has no {what}: it is built without the kernel feature `{feature}` (features: {}); add it: --features {}",
        env.name(),
        if have.is_empty() { "none".to_string() } else { have.join(",") },
        with.join(",")
    ))
}

/// What `env` needs of the CPU, as QEMU's property names, and why.
fn needed_cpu(env: Env) -> &'static [(&'static str, &'static str)] {
    const LONG_MODE: (&str, &str) =
        ("lm", "Xen is a 64-bit hypervisor: it needs a 64-bit CPU model (long mode)");
    const SVM: (&str, &str) =
        ("svm", "a PVH guest needs hardware virtualization (SVM, the one QEMU's TCG offers)");
    const NPT: (&str, &str) = ("npt", "a PVH guest needs nested paging (NPT)");
    match env {
        Env::Xen | Env::XenDomu => &[LONG_MODE],
        Env::XenPvh | Env::XenPvhDomu => &[LONG_MODE, SVM, NPT],
        _ => &[],
    }
}

/// `-cpu MODEL[,+feat][,-feat][,feat=on|off]` as QMP's `{"name", "props"}`.
fn cpu_model_json(cpu: &str) -> String {
    let mut parts = cpu.split(',');
    let name = parts.next().unwrap_or("");
    let props: Vec<String> = parts
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (key, value) = if let Some(k) = p.strip_prefix('+') {
                (k, "true".to_string())
            } else if let Some(k) = p.strip_prefix('-') {
                (k, "false".to_string())
            } else {
                let (k, v) = p.split_once('=').unwrap_or((p, "on"));
                let v = match v {
                    "on" | "true" | "yes" => "true".to_string(),
                    "off" | "false" | "no" => "false".to_string(),
                    n if n.parse::<i64>().is_ok() => n.to_string(),
                    s => format!("{s:?}"),
                };
                (k, v)
            };
            format!("{key:?}: {value}")
        })
        .collect();
    format!("{{\"name\": {name:?}, \"props\": {{{}}}}}", props.join(", "))
}

/// Err if `cpu` lacks what `env` needs, as QEMU expands the model.
pub fn cpu_fits(env: Env, cpu: &str, qemu: &str) -> Result<(), String> {
    let needed = needed_cpu(env);
    if needed.is_empty() {
        return Ok(());
    }
    let props = expand(cpu, qemu)?;
    for (flag, why) in needed {
        if !props.contains(&format!("\"{flag}\": true")) {
            return Err(format!(
                "--cpu {cpu} under --env {}: {why}; this model has no {flag} (try --cpu max)",
                env.name()
            ));
        }
    }
    Ok(())
}

/// QEMU's expansion of a CPU model: its QMP reply, with every property.
fn expand(cpu: &str, qemu: &str) -> Result<String, String> {
    let mut child = Command::new(qemu)
        .args(["-machine", "none", "-accel", "tcg", "-nodefaults", "-display", "none", "-qmp", "stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("running {qemu}: {e}"))?;
    let request = format!(
        "{{\"execute\": \"qmp_capabilities\"}}\n\
         {{\"execute\": \"query-cpu-model-expansion\", \"arguments\": {{\"type\": \"full\", \"model\": {}}}}}\n\
         {{\"execute\": \"quit\"}}\n",
        cpu_model_json(cpu)
    );
    // QEMU reads the commands in order and quits after the last.
    let _ = child.stdin.take().expect("piped").write_all(request.as_bytes());
    let out = child.wait_with_output().map_err(|e| format!("running {qemu}: {e}"))?;
    let reply = String::from_utf8_lossy(&out.stdout).into_owned();
    if let Some(line) = reply.lines().find(|l| l.contains("\"error\"")) {
        let desc = line.split("\"desc\": \"").nth(1).and_then(|d| d.split('"').next()).unwrap_or(line);
        return Err(format!("--cpu {cpu}: {desc}"));
    }
    if !reply.contains("\"props\"") {
        return Err(format!("--cpu {cpu}: {qemu} did not expand the model"));
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KERNEL_TOML: &str = "[features]\ndefault = [\"native\", \"xen\", \"lguest\"]\nnative = []\n";

    fn opts(features: Option<&str>, no_default: bool) -> build::Opts {
        build::Opts {
            release: false,
            features: features.map(str::to_string),
            no_default_features: no_default,
        }
    }

    #[test]
    fn features_are_the_default_list_and_the_extra_ones() {
        assert_eq!(features(KERNEL_TOML, &opts(None, false)), ["native", "xen", "lguest"]);
        assert_eq!(features(KERNEL_TOML, &opts(Some("native"), true)), ["native"]);
        assert_eq!(features(KERNEL_TOML, &opts(Some("native xen"), true)), ["native", "xen"]);
        assert!(features(KERNEL_TOML, &opts(None, true)).is_empty());
    }

    #[test]
    fn an_image_without_the_backend_is_refused_naming_the_feature() {
        let e = image_fits(Env::Xen, KERNEL_TOML, &opts(Some("native"), true)).unwrap_err();
        assert!(e.contains("no Xen PV entry"), "{e}");
        assert!(e.contains("--features native,xen"), "{e}");
        let e = image_fits(Env::Lguest, KERNEL_TOML, &opts(Some("native,xen"), true)).unwrap_err();
        assert!(e.contains("no lguest backend") && e.contains("--features native,xen,lguest"), "{e}");
        assert!(image_fits(Env::Xen, KERNEL_TOML, &opts(None, false)).is_ok());
        assert!(image_fits(Env::Qemu, KERNEL_TOML, &opts(Some(""), true)).is_ok());
    }

    #[test]
    fn cpu_options_become_qmp_properties() {
        assert_eq!(cpu_model_json("pentium"), r#"{"name": "pentium", "props": {}}"#);
        assert_eq!(
            cpu_model_json("max,-lm,+svm,npt=off,phys-bits=40"),
            r#"{"name": "max", "props": {"lm": false, "svm": true, "npt": false, "phys-bits": 40}}"#
        );
    }
}
