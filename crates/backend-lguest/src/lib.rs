//! lguest (work in progress: detection and registration only).
//!
//! lguest's Launcher enters the kernel through the Linux boot protocol with
//! `boot_params.hdr.hardware_subarch = 1`, in ring 1, paging on.

#![no_std]

use linkme::distributed_slice;
use paravirt::bootinfo::SUBARCH_LGUEST;
use paravirt::{BootInfo, Detected, HvError, HvResult, Hypervisor, Verdict, HYPERVISORS};

pub struct Lguest;

impl Hypervisor for Lguest {
    fn name(&self) -> &'static str {
        "lguest"
    }

    fn detect(&self, boot: &BootInfo) -> Verdict {
        match boot.hardware_subarch() {
            Some(SUBARCH_LGUEST) => {
                Ok(Detected { priority: 100, why: "boot_params.hardware_subarch = 1 (lguest)" })
            }
            Some(_) => Err("boot_params.hardware_subarch is not 1"),
            None => Err("not entered through the Linux boot protocol"),
        }
    }

    fn init(&self, _boot: &mut BootInfo) -> HvResult {
        Err(HvError::new("lguest init: backend not implemented yet", &[], -38))
    }
}

#[distributed_slice(HYPERVISORS)]
static LGUEST: &'static dyn Hypervisor = &Lguest;
