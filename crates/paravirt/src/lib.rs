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
//! filled with native versions and overwritten by a backend at boot. Here it
//! is the [`Hypervisor`] trait: every method has a default that *is* the
//! native behaviour (or a no-op), so a backend overrides only what differs
//! and reads as a list of differences.
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
//! build, `alloc_pt`/`alloc_pd` announce every new pagetable page, and all
//! entries are written through `set_pte`/`set_pmd`/`set_pgd`, which receive
//! an [`EntryRef`] carrying everything any backend needs to know about the
//! entry (its page, index, the virtual address it maps, the root).

#![no_std]

pub mod bootinfo;
pub mod bootparams;
pub mod cmdline;
pub mod counters;
pub mod entry;
pub mod error;
pub mod hypervisor;
pub mod memmap;
pub mod multiboot;
pub mod native;
pub mod phys;
pub mod pvh;
pub mod select;

pub use bootinfo::{BootInfo, BootProtocol};
pub use counters::Counters;

pub use entry::EntryRef;
pub use error::{ExitStatus, HvError, HvResult};
pub use hypervisor::{Detected, Hypervisor, PagetableSetup, Verdict};
pub use phys::{PageAlloc, PhysMem, PhysRead};
pub use select::{evaluate, select, Candidates, SelectError, HYPERVISORS};
