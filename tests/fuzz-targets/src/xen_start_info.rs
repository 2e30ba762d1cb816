//! Xen PV `start_info`: the input is the page Xen hands over (any length:
//! a short one must be an error, not a read past its end).

use paravirt::xen_start_info::{StartInfo, StartInfoError, SIZE};

pub fn run(data: &[u8]) {
    match StartInfo::parse(data) {
        Ok((si, cmdline)) => {
            assert!(data.len() >= SIZE, "a start_info of {} bytes parsed", data.len());
            assert_eq!(si.is_dom0(), si.flags & paravirt::xen_start_info::SIF_INITDOMAIN != 0);
            crate::contract::cmdline(&cmdline);
        }
        Err(StartInfoError::Short { len }) => assert!(len == data.len() && len < SIZE),
        Err(StartInfoError::Magic) => {}
    }
}
