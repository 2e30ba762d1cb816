//! The command line and its switches: the input is the raw line as a boot
//! loader hands it over (any bytes, any length).

use paravirt::cmdline::CmdLine;

pub fn run(data: &[u8]) {
    let c = CmdLine::from_bytes(data);
    crate::contract::cmdline(&c);
    let nul = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    assert_eq!(c.truncated, nul > paravirt::cmdline::CMDLINE_MAX);
    assert!(data.starts_with(c.as_str().as_bytes()), "the line is not a prefix of its input");
    // Every word as a key: lookups answer or say which value is bad.
    for w in c.as_str().split_ascii_whitespace() {
        let key = w.split_once('=').map_or(w, |(k, _)| k);
        if let Some(v) = c.get(key) {
            assert!(c.as_str().contains(v));
        }
        let _ = c.has(key);
    }
    for key in ["xen_fail_hypercall", "lguest_skip_notify"] {
        if let Err(e) = c.get_u32(key) {
            assert_eq!(Some(e.value), c.get(key));
        }
    }
    const CHOICES: &[(&str, &[&str])] =
        &[("paging", &["2level", "pae"]), ("fault", &["pf", "ud", "stack", "irq"])];
    for &(key, choices) in CHOICES {
        if let Ok(Some(v)) = c.get_choice(key, choices, "a choice") {
            assert!(choices.contains(&v));
        }
    }
}
