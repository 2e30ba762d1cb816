//! The command line and its switches: the input is the raw line as a boot
//! loader hands it over (any bytes, any length), checked against the table
//! of every switch (`paravirt::switches`).

use std::vec::Vec;

use paravirt::cmdline::CmdLine;
use paravirt::switches::{self, Takes, SWITCHES};

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
    // The whole line against the table of switches, as early boot checks
    // it: the check and the lookups the kernel makes later agree, both
    // ways, and every unknown key it reports is a key=value of the line.
    let mut unknown = Vec::new();
    let checked = switches::validate(&c, |w| unknown.push(w));
    for w in unknown {
        let (key, _) = w.split_once('=').expect("an unknown switch without '='");
        assert!(switches::find(key).is_none() && c.as_str().contains(w));
    }
    for sw in SWITCHES {
        let looked_up = match sw.takes {
            Takes::Number => c.get_u32(sw.name).map(|_| ()),
            Takes::Choice(choices, want) => c.get_choice(sw.name, choices, want).map(|_| ()),
            Takes::Flag | Takes::Word => Ok(()),
        };
        match (&checked, looked_up) {
            (Ok(()), Err(e)) => panic!("the check passed {e} that the lookup refuses"),
            (Err(e), Ok(())) if e.key == sw.name => panic!("the check refused {e} that the lookup takes"),
            _ => {}
        }
    }
}
