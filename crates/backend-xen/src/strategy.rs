//! How the kernel's pagetable build talks to Xen: this backend's way and,
//! for `cargo xtask bench` to set side by side with it, the two anchors'.
//!
//! The map built is the same whichever is chosen (`xen_pt_strategy=` on
//! the command line); only the hypercalls that build it differ:
//!
//! - **pvops** (this backend): the build's own pages are written with plain
//!   stores (Xen has never seen them), the bulk path fills machine-
//!   contiguous runs like native memory, and `pagetable_setup_done` sends
//!   one multicall: one `mmu_update` making every new table page read-only,
//!   one `mmuext_op` pinning the new L3, switching to it and unpinning
//!   Xen's, one `mmu_update` making Xen's boot L3 and L2 writable again.
//!   One trap for the whole build, at any memory size.
//! - **minios** (Mini-OS's `arch/x86/mm.c`, `new_pt_frame` and
//!   `build_pagetable`): every new table page is made read-only as soon as
//!   it is allocated, one hypercall, and every write into a table goes
//!   through Xen at once: a pmd or pgd entry (the hook) a single-entry
//!   `mmu_update`, the ptes of a pte page one `mmu_update` of up to 512.
//!   About 2 hypercalls per table page plus one per 512 ptes. (Mini-OS
//!   walks to the pte that maps the page and sends a single-entry
//!   `mmu_update`; here it is a single `update_va_mapping`, where Xen does
//!   the walk: one trap and one entry either way.)
//! - **linux** (Linux's Xen MMU code in lazy-MMU mode): every new table page
//!   is made read-only as it is allocated (`make_lowmem_page_readonly`) by
//!   an `update_va_mapping` queued in the per-CPU multicall buffer
//!   (`arch/x86/xen/multicalls.c`: 32 entries, 512 bytes of arguments),
//!   and every write into a table is an `mmu_update` entry that extends
//!   the previous `mmu_update` when that is the last call queued
//!   (`xen_extend_mmu_update`). The buffer is sent when it is full, when
//!   a pmd or pgd entry is written (the build reads those back, and must
//!   see them), and when lazy mode ends; the pin, the switch and the unpin
//!   are queued as three `mmuext_op`s.
//!
//! The strategy governs the kernel's pagetable build only: once
//! `pagetable_setup_done` has made the table live, every hook works this
//! backend's way (address spaces, fork, faults).

use paravirt::HvResult;

use crate::abi::{MmuUpdate, MmuextOp};
use crate::batch;
use crate::transport::{Hypercalls, SubCall, SubResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Strategy {
    Pvops = 0,
    MiniOs = 1,
    Linux = 2,
}

impl Strategy {
    /// The values `xen_pt_strategy=` takes, in the order of the enum.
    pub const NAMES: &'static [&'static str] = &["pvops", "minios", "linux"];

    pub fn from_name(name: &str) -> Option<Strategy> {
        let i = Strategy::NAMES.iter().position(|n| *n == name)?;
        Some(Strategy::from_u8(i as u8))
    }

    pub fn from_u8(v: u8) -> Strategy {
        match v {
            1 => Strategy::MiniOs,
            2 => Strategy::Linux,
            _ => Strategy::Pvops,
        }
    }

    pub fn name(self) -> &'static str {
        Strategy::NAMES[self as usize]
    }
}

/// Mini-OS's batch of L1 entries: one pte page's worth.
pub const MINIOS_L1_BATCH: usize = 512;

/// Linux's multicall buffer: `MC_BATCH` entries.
pub const LINUX_MC_BATCH: usize = 32;
/// ... and `MC_ARGS` bytes of argument space (an mmu_update entry takes
/// 16, an mmuext_op 12, an update_va_mapping none). Linux flushes when an
/// entry would bring the space used to `MC_ARGS` or beyond, so one
/// `mmu_update` carries at most 31 entries.
pub const LINUX_MC_ARGS: usize = LINUX_MC_BATCH * 16;

#[derive(Clone, Copy, Debug)]
enum Queued {
    UpdateVaMapping {
        va: u32,
        val: u64,
    },
    /// The next `len` entries of the mmu_update argument array.
    MmuUpdate {
        len: usize,
    },
    Mmuext(MmuextOp),
}

/// Linux's per-CPU multicall buffer, as `xen_mc_entry`, `xen_mc_extend_args`
/// and `xen_mc_flush` fill and send it.
pub struct LinuxMc {
    calls: [Queued; LINUX_MC_BATCH],
    n: usize,
    mmu: [MmuUpdate; LINUX_MC_ARGS / 16],
    nmmu: usize,
    arg_bytes: usize,
}

impl Default for LinuxMc {
    fn default() -> Self {
        LinuxMc::new()
    }
}

impl LinuxMc {
    pub const fn new() -> LinuxMc {
        LinuxMc {
            calls: [Queued::MmuUpdate { len: 0 }; LINUX_MC_BATCH],
            n: 0,
            mmu: [MmuUpdate { ptr: 0, val: 0 }; LINUX_MC_ARGS / 16],
            nmmu: 0,
            arg_bytes: 0,
        }
    }

    /// `__xen_mc_entry(args)`: room for one more call with `args` bytes,
    /// flushing first if there is none.
    fn entry<T: Hypercalls + ?Sized>(&mut self, hc: &T, args: usize) -> HvResult {
        if self.n == LINUX_MC_BATCH || self.arg_bytes + args >= LINUX_MC_ARGS {
            self.flush(hc)?;
        }
        Ok(())
    }

    /// `xen_extend_mmu_update`: one more entry for the last call if it is
    /// an mmu_update and the argument space allows, else a new call.
    pub fn mmu_update<T: Hypercalls + ?Sized>(&mut self, hc: &T, u: MmuUpdate) -> HvResult {
        let extends = self.n > 0
            && matches!(self.calls[self.n - 1], Queued::MmuUpdate { .. })
            && self.arg_bytes + 16 < LINUX_MC_ARGS;
        if extends {
            if let Queued::MmuUpdate { len } = &mut self.calls[self.n - 1] {
                *len += 1;
            }
        } else {
            self.entry(hc, 16)?;
            self.calls[self.n] = Queued::MmuUpdate { len: 1 };
            self.n += 1;
        }
        self.mmu[self.nmmu] = u;
        self.nmmu += 1;
        self.arg_bytes += 16;
        Ok(())
    }

    /// `MULTI_update_va_mapping`, queued.
    pub fn update_va_mapping<T: Hypercalls + ?Sized>(&mut self, hc: &T, va: u32, val: u64) -> HvResult {
        self.entry(hc, 0)?;
        self.calls[self.n] = Queued::UpdateVaMapping { va, val };
        self.n += 1;
        Ok(())
    }

    /// `MULTI_mmuext_op` of one op, queued.
    pub fn mmuext<T: Hypercalls + ?Sized>(&mut self, hc: &T, op: MmuextOp) -> HvResult {
        self.entry(hc, 12)?;
        self.calls[self.n] = Queued::Mmuext(op);
        self.n += 1;
        self.arg_bytes += 12;
        Ok(())
    }

    /// `xen_mc_flush`: one multicall of everything queued.
    pub fn flush<T: Hypercalls + ?Sized>(&mut self, hc: &T) -> HvResult {
        let n = self.n;
        if n == 0 {
            return Ok(());
        }
        (self.n, self.arg_bytes) = (0, 0);
        let nmmu = core::mem::take(&mut self.nmmu);
        let mut subs: [SubCall; LINUX_MC_BATCH] =
            core::array::from_fn(|_| SubCall::UpdateVaMapping { va: 0, val: 0, flags: 0 });
        let mut rest = &mut self.mmu[..nmmu];
        for (sub, q) in subs.iter_mut().zip(self.calls[..n].iter_mut()) {
            *sub = match q {
                // Flags 0: no flush; Xen flushes stale TLB entries itself
                // when the page becomes a pagetable.
                &mut Queued::UpdateVaMapping { va, val } => SubCall::UpdateVaMapping { va, val, flags: 0 },
                &mut Queued::MmuUpdate { len } => {
                    let (this, tail) = core::mem::take(&mut rest).split_at_mut(len);
                    rest = tail;
                    SubCall::MmuUpdate(this)
                }
                Queued::Mmuext(op) => SubCall::Mmuext(core::slice::from_mut(op)),
            };
        }
        let mut results = [SubResult::default(); LINUX_MC_BATCH];
        batch::multicall(hc, &mut subs[..n], &mut results[..n])
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::fake::{Call, FakeXen, Sub};
    use std::vec::Vec;

    #[test]
    fn the_switch_table_offers_exactly_these_names() {
        let sw = paravirt::switches::find("xen_pt_strategy").unwrap();
        assert!(matches!(sw.takes, paravirt::switches::Takes::Choice(c, _) if c == Strategy::NAMES));
    }

    fn shape(c: &Call) -> Vec<(char, usize)> {
        c.subs()
            .iter()
            .map(|s| match s {
                Sub::MmuUpdate(r) => ('m', r.len()),
                Sub::Mmuext(o) => ('x', o.len()),
                Sub::UpdateVaMapping { .. } => ('u', 1),
            })
            .collect()
    }

    #[test]
    fn linux_extends_the_last_mmu_update_within_its_argument_space() {
        let xen = FakeXen::new();
        let mut mc = LinuxMc::new();
        // A table page made read-only, then 40 pte writes into it: the
        // first 31 extend one mmu_update (31 * 16 = 496 bytes; a 32nd
        // would reach 512), then the buffer goes and a new one starts.
        mc.update_va_mapping(&xen, 0xC010_0000, 0x1061).unwrap();
        for i in 0..40u64 {
            mc.mmu_update(&xen, MmuUpdate { ptr: 0x5000 + 8 * i, val: i }).unwrap();
        }
        assert_eq!(xen.calls().len(), 1);
        mc.flush(&xen).unwrap();
        let calls = xen.calls();
        assert_eq!(shape(&calls[0]), [('u', 1), ('m', 31)]);
        assert_eq!(shape(&calls[1]), [('m', 9)]);
        let vals: Vec<u64> = calls
            .iter()
            .flat_map(|c| c.subs())
            .flat_map(|s| if let Sub::MmuUpdate(r) = s { r } else { Vec::new() })
            .map(|u| u.val)
            .collect();
        assert_eq!(vals, (0..40).collect::<Vec<u64>>(), "in order");
    }

    #[test]
    fn linux_sends_its_buffer_at_32_calls() {
        let xen = FakeXen::new();
        let mut mc = LinuxMc::new();
        for i in 0..33 {
            mc.update_va_mapping(&xen, 0xC000_0000 + i * 4096, 0x61).unwrap();
        }
        assert_eq!(xen.calls().len(), 1);
        assert_eq!(shape(&xen.calls()[0]).len(), 32);
        // An mmu_update after an update_va_mapping starts a new call.
        mc.mmu_update(&xen, MmuUpdate { ptr: 8, val: 1 }).unwrap();
        mc.mmuext(&xen, MmuextOp { cmd: 2, arg1: 7, arg2: 0 }).unwrap();
        mc.flush(&xen).unwrap();
        assert_eq!(shape(&xen.calls()[1]), [('u', 1), ('m', 1), ('x', 1)]);
        mc.flush(&xen).unwrap();
        assert_eq!(xen.calls().len(), 2, "nothing left to send");
    }

    #[test]
    fn names_round_trip() {
        for (i, n) in Strategy::NAMES.iter().enumerate() {
            let s = Strategy::from_name(n).unwrap();
            assert_eq!((s.name(), s as u8, Strategy::from_u8(i as u8)), (*n, i as u8, s));
        }
        assert_eq!(Strategy::from_name("xen"), None);
    }
}
