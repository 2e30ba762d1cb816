//! Choosing how to page: the backend's policy, the CPU's features and the
//! `paging=`/`nolargepages` switches agreeing on one format and its
//! features.

use arch_i386::PagingMode;
use mm::Caps;
use paravirt::{BootInfo, Hypervisor};

use crate::{fail, kprintln, skip};

#[derive(Clone, Copy, Debug)]
pub struct Paging {
    pub mode: PagingMode,
    pub caps: Caps,
}

pub fn choose(hv: &dyn Hypervisor, boot: &BootInfo) -> Paging {
    let cpu = &boot.cpu;
    if !cpu.has_cpuid {
        skip!("this CPU has no CPUID instruction (a 386 or early 486); pvops needs CPUID to probe paging features");
    }
    let policy = hv.paging();
    let modes = policy.paging_modes(cpu);
    let wanted = match boot.cmdline.get_choice("paging", &["2level", "pae"], "2level or pae") {
        Ok(w) => w,
        Err(e) => fail!("{}", e),
    };
    let mode = match wanted {
        None => match modes.first() {
            Some(m) => *m,
            None => skip!("backend {} supports no paging mode on this CPU", hv.name()),
        },
        Some(want) => {
            let m = if want == "pae" { PagingMode::Pae } else { PagingMode::TwoLevel };
            if !modes.contains(&m) {
                fail!(
                    "paging={}: not available with backend {} on this CPU (pae={})",
                    want,
                    hv.name(),
                    cpu.pae as u8
                );
            }
            m
        }
    };
    let caps = Caps {
        large_pages: policy.large_pages(cpu) && !boot.cmdline.has("nolargepages"),
        global_pages: policy.global_pages(cpu),
        nx: mode == PagingMode::Pae && cpu.nx,
    };
    kprintln!(
        "paging: {} nx={} large={} global={}",
        mode.name(),
        caps.nx as u8,
        caps.large_pages as u8,
        caps.global_pages as u8
    );
    Paging { mode, caps }
}
