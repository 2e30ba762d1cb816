//! paravirt: one interface between the kernel and whatever runs it.
//!
//! # The idea
//!
//! An i386 kernel touches the machine in a few dozen places: it writes
//! pagetable entries, loads CR3, flushes the TLB, loads descriptor tables,
//! prints, and powers off. On bare hardware each is one instruction. Under a
//! hypervisor some of them must not be: a Xen PV guest runs in ring 1 where
//! `mov cr3` faults, and Xen only accepts pagetables it has validated, so
//! pagetable pages must be read-only and every change goes through a
//! hypercall; lguest never loads the guest's pagetable into the MMU at all,
//! it shadows it, so every change must be told to the host.
//!
//! Linux solved this with `paravirt_ops`, a table of function pointers
//! filled with native versions and overwritten by a backend at boot,
//! grouped by subsystem (`pv_ops.cpu`, `pv_ops.irq`, `pv_ops.mmu`). Here it
//! is the [`Hypervisor`] trait (the platform: name, detection, console,
//! power) and its groups, [`PagingPolicy`], [`Mmu`] and [`Cpu`], each a
//! trait whose every method has a default that *is* the native behaviour
//! (or a no-op). A backend returns its own group only where it differs,
//! and overrides only the methods that differ: it reads as a list of
//! differences.
//!
//! # Selection
//!
//! Backends register a `&'static dyn Hypervisor` in the [`HYPERVISORS`]
//! distributed slice (linkme) from their own crates. Early in boot the kernel
//! gathers every detection input into one [`BootInfo`] (boot protocol,
//! CPUID hypervisor leaves, command line), asks each backend to
//! [`detect`](Hypervisor::detect), and [`select`]s the highest priority,
//! `native` last; `hypervisor=NAME` on the command line overrides.
//!
//! # Pagetables
//!
//! The pagetable hooks follow Linux's "hooks to set up initial pagetable"
//! patch: `pagetable_setup_start` and `pagetable_setup_done` bracket the
//! build, which is a value of its own ([`PagetableBuild`], see [`mmu`]);
//! `alloc_pt`/`alloc_pd` announce every new pagetable page, at boot and
//! after; and all entries are written through `set_pte`/`set_pmd`/
//! `set_pgd`, which receive an [`EntryRef`] carrying everything any backend
//! needs to know about the entry (its page, index, the virtual address it
//! maps, the root, and whether the hypervisor has seen that table yet).

#![no_std]

pub mod bootinfo;
pub mod bootparams;
pub mod cmdline;
pub mod counters;
pub mod cpu;
pub mod entry;
pub mod error;
pub mod hypervisor;
pub mod irq;
pub mod memmap;
pub mod mmu;
pub mod multiboot;
pub mod native;
pub mod paging;
pub mod pfnset;
pub mod phys;
pub mod pvh;
pub mod select;
pub mod services;
pub mod switches;
pub mod time;
pub mod xen_start_info;

pub use bootinfo::{BootInfo, BootProtocol};
pub use counters::Counters;
pub use cpu::Cpu;
pub use entry::{EntryRef, Pinning};
pub use error::{ExitStatus, HvError, HvResult};
pub use hypervisor::{Detected, Hypervisor, Verdict};
pub use irq::{Irq, IrqFlags, Line};
pub use mmu::{BuildError, BulkFill, Mmu, PagetableBuild, TableAllocError};
pub use paging::{Caps, PagingPolicy};
pub use phys::{PageAlloc, PhysMem, PhysRead};
pub use select::{evaluate, select, Candidates, SelectError, HYPERVISORS};
pub use services::{DevicePage, Services};
pub use time::{Clocks, Time, WallClock};
