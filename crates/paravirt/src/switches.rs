//! Every kernel command-line switch in one table: its name and what it
//! takes. The switches are looked up where they act (the backends, paging,
//! the time self-test), but the whole line is checked against this table
//! once, early in boot, so a bad value is one clear FAILURE naming the
//! switch before anything acted on the rest of the line. A `key=value`
//! the table does not know is reported but allowed: like Linux, the kernel
//! passes on what it does not understand. A host test
//! (`tests/tests/switches.rs`) finds every lookup in the sources and
//! checks it is in the table.

use crate::cmdline::{BadSwitch, CmdLine};

/// What a switch takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Takes {
    /// A bare word (`perf`, `nolargepages`).
    Flag,
    /// A decimal or `0x` hexadecimal u32.
    Number,
    /// One of these words; the text says them for the error message.
    Choice(&'static [&'static str], &'static str),
    /// Any word: checked where it is used (`hypervisor=`, against the
    /// backends this image has).
    Word,
}

#[derive(Clone, Copy, Debug)]
pub struct Switch {
    pub name: &'static str,
    pub takes: Takes,
}

const fn s(name: &'static str, takes: Takes) -> Switch {
    Switch { name, takes }
}

/// The kernel's switches (README, "Kernel command-line switches").
pub const SWITCHES: &[Switch] = &[
    s("hypervisor", Takes::Word),
    s("paging", Takes::Choice(&["2level", "pae"], "2level or pae")),
    s("nolargepages", Takes::Flag),
    s("fault", Takes::Choice(&["pf", "ud", "stack", "irq"], "pf, ud, stack or irq")),
    s("clocksource", Takes::Choice(&["tsc", "pit"], "tsc or pit")),
    s("clockevent", Takes::Choice(&["lapic", "pit"], "lapic or pit")),
    s("timetest", Takes::Choice(&["full", "short"], "full or short")),
    s("xen_fail_hypercall", Takes::Number),
    s("xen_pt_strategy", Takes::Choice(&["pvops", "minios", "linux"], "pvops, minios or linux")),
    s("lguest_skip_notify", Takes::Number),
    s("perf", Takes::Flag),
    s("bench", Takes::Choice(&["baseline", "remap"], "baseline or remap")),
    s("procs", Takes::Number),
    s("fail_fork", Takes::Number),
    s("procmem", Takes::Number),
];

pub fn find(name: &str) -> Option<&'static Switch> {
    SWITCHES.iter().find(|s| s.name == name)
}

/// Checks the line against the table: the first known switch with a bad
/// value is the error (through the same lookups the kernel uses later, so
/// the two cannot disagree); every `key=value` with an unknown key goes to
/// `unknown`.
pub fn validate<'a>(c: &'a CmdLine, mut unknown: impl FnMut(&'a str)) -> Result<(), BadSwitch<'a>> {
    for w in c.as_str().split_ascii_whitespace() {
        if let Some((key, _)) = w.split_once('=') {
            if find(key).is_none() {
                unknown(w);
            }
        }
    }
    for sw in SWITCHES {
        match sw.takes {
            Takes::Number => {
                c.get_u32(sw.name)?;
            }
            Takes::Choice(choices, want) => {
                c.get_choice(sw.name, choices, want)?;
            }
            // A flag given a value (`perf=1`) is not the flag; the word
            // is passed on like any unknown one.
            Takes::Flag | Takes::Word => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(line: &str) -> (Result<(), std::string::String>, std::vec::Vec<std::string::String>) {
        extern crate std;
        use std::string::ToString;
        let c = CmdLine::from_bytes(line.as_bytes());
        let mut unknown = std::vec::Vec::new();
        let r = validate(&c, |w| unknown.push(w.to_string())).map_err(|e| e.to_string());
        (r, unknown)
    }

    extern crate std;

    #[test]
    fn a_good_line_passes_and_unknown_keys_are_reported() {
        let (r, unknown) =
            check("hypervisor=xen paging=pae perf xen_fail_hypercall=0x10 root=/dev/sda quiet");
        assert_eq!(r, Ok(()));
        assert_eq!(unknown, ["root=/dev/sda"]);
    }

    #[test]
    fn a_bad_value_names_the_switch() {
        assert_eq!(check("clockevent=hpet").0, Err("clockevent=hpet: not lapic or pit".into()));
        assert_eq!(check("procs=many").0, Err("procs=many: not a number".into()));
        // The last one wins, as in the lookups.
        assert_eq!(check("paging=x paging=pae").0, Ok(()));
    }

    #[test]
    fn names_are_unique() {
        for (i, a) in SWITCHES.iter().enumerate() {
            assert!(SWITCHES[i + 1..].iter().all(|b| b.name != a.name), "{} twice", a.name);
        }
    }
}
