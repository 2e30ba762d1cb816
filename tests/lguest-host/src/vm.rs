//! The guest, as the host keeps it between traps: its memory, its shadow
//! pagetables, what it registered through hypercalls, and how the run is
//! going.

use crate::clock::{Clock, ClockEvent};
use crate::console::GuestConsole;
use crate::fatal::{fatal, Fatal, Result};
use crate::guest_mem::GuestMem;
use crate::idt::GuestIdt;
use crate::interrupts::Interrupts;
use crate::layout::{host_owned, GuestRegs, GDT_ENTRIES};
use crate::shadow::Shadows;
use crate::stats::Stats;

/// Why the run ended.
pub enum End {
    /// CRASH("Power down"): the guest is done.
    PowerOff,
    /// CRASH with any other message.
    Crashed(Fatal),
    /// The host stopped the guest (lguest's kill_guest).
    Killed(Fatal),
}

/// GDT entries the guest asked for (LOAD_GDT), for the Switcher to
/// install in the real GDT before the guest next runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct GdtWrites {
    pub entries: [Option<u64>; GDT_ENTRIES],
}

impl GdtWrites {
    /// Records entry `index` (never one of the host's own slots).
    pub fn set(&mut self, index: usize, desc: u64) {
        assert!(index < GDT_ENTRIES && !host_owned(index));
        self.entries[index] = Some(desc);
    }

    /// The pending writes, emptied.
    pub fn take(&mut self) -> impl Iterator<Item = (usize, u64)> {
        core::mem::take(&mut self.entries).into_iter().enumerate().filter_map(|(i, d)| d.map(|d| (i, d)))
    }
}

pub struct Vm {
    /// The guest's registers: copied into the Switcher's trap frame for
    /// each run, and back out after each trap.
    pub regs: GuestRegs,
    pub gdt: GdtWrites,
    pub mem: GuestMem,
    pub shadows: Shadows,
    /// The Launcher's pgdir (guest-physical), published at LGUEST_INIT.
    pub launcher_pgdir: u32,
    /// Guest-physical address of `lguest_data`, once LGUEST_INIT told us.
    pub data: Option<u32>,
    /// The next async ring slot to look at.
    pub next_hcall: u32,
    pub idt: GuestIdt,
    /// Irqs pending for the guest, whether it is halted, its noirq window.
    pub irqs: Interrupts,
    /// The host's time, and the guest's timer (SET_CLOCKEVENT).
    pub clock: Clock,
    pub clockevent: ClockEvent,
    /// SET_STACK: the guest kernel's stack for traps from ring 3.
    pub kernel_stack: Option<(u32, u32)>,
    /// TS: the guest's CR0.TS.
    pub ts: bool,
    pub console: GuestConsole,
    pub stats: Stats,
    pub end: Option<End>,
    /// The last page fault the host filled, and how often in a row.
    last_fill: (u32, u32, u32),
    fill_repeats: u32,
}

/// The same fault filled this often in a row means the shadow does not
/// stick: a host bug, reported instead of looping forever.
const FILL_REPEATS_MAX: u32 = 64;

impl Vm {
    pub fn new(regs: GuestRegs, mem: GuestMem, shadows: Shadows, launcher_pgdir: u32, clock: Clock) -> Vm {
        Vm {
            regs,
            gdt: GdtWrites::default(),
            mem,
            shadows,
            launcher_pgdir,
            data: None,
            next_hcall: 0,
            idt: GuestIdt::new(),
            irqs: Interrupts::default(),
            clock,
            clockevent: ClockEvent::default(),
            kernel_stack: None,
            ts: false,
            console: GuestConsole::new(),
            stats: Stats::new(),
            end: None,
            last_fill: (0, 0, 0),
            fill_repeats: 0,
        }
    }

    /// Signs of life: hypercalls the guest made and interrupts it took. A
    /// guest that shows none for long spins without purpose.
    pub fn progress(&self) -> u32 {
        let hypercalls: u32 = self.stats.sync.iter().sum();
        hypercalls + self.irqs.delivered()
    }

    /// `lguest_data` + `off`, which must have been registered.
    pub fn data_field(&self, off: u32) -> Result<u32> {
        self.data.map(|d| d + off).ok_or_else(|| fatal!("the guest has not called LGUEST_INIT"))
    }

    /// Notes a filled page fault; an error if it keeps coming back.
    pub fn filled(&mut self, eip: u32, va: u32, err: u32) -> Result {
        if self.last_fill == (eip, va, err) {
            self.fill_repeats += 1;
            if self.fill_repeats > FILL_REPEATS_MAX {
                return Err(fatal!(
                    "page fault at eip {:#010x} for {:#010x} (error {:#x}) repeats after its shadow entry was filled",
                    eip,
                    va,
                    err
                ));
            }
        } else {
            self.last_fill = (eip, va, err);
            self.fill_repeats = 0;
        }
        Ok(())
    }
}
