//! Xen PV (work in progress: detection and registration only).
//!
//! A Xen PV guest is entered at XEN_ELFNOTE_ENTRY in ring 1 with esi
//! pointing at `start_info`, whose first bytes are "xen-3.0-x86_32p" for a
//! 32-bit PAE guest. Until the backend's hooks exist, `init` refuses, so a
//! Xen boot ends with a clear error instead of native code faulting.

#![no_std]

use linkme::distributed_slice;
use paravirt::{
    BootInfo, BootProtocol, Detected, HvError, HvResult, Hypervisor, Verdict, HYPERVISORS,
};

pub struct XenPv;

/// start_info magic of a 32-bit PAE PV guest.
pub const START_INFO_MAGIC: &[u8] = b"xen-3.0-x86_32p";

impl Hypervisor for XenPv {
    fn name(&self) -> &'static str {
        "xen"
    }

    fn detect(&self, boot: &BootInfo) -> Verdict {
        match boot.protocol {
            BootProtocol::XenPv { magic, .. } if magic.starts_with(START_INFO_MAGIC) => {
                Ok(Detected {
                    priority: 100,
                    why: "start_info magic xen-3.0-x86_32p",
                })
            }
            BootProtocol::XenPv { .. } => Err("start_info magic is not xen-3.0-x86_32p"),
            _ => Err("not entered through Xen's PV entry (no start_info)"),
        }
    }

    fn init(&self, _boot: &mut BootInfo) -> HvResult {
        Err(HvError::new(
            "xen init: backend not implemented yet",
            &[],
            -38,
        ))
    }
}

#[distributed_slice(HYPERVISORS)]
static XEN: &'static dyn Hypervisor = &XenPv;
