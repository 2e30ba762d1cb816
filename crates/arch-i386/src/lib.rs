//! i386 hardware, described once.
//!
//! This crate knows what the CPU knows and nothing else: address types, the
//! two pagetable formats (2-level and PAE), CPUID, control registers, port
//! I/O, segment and interrupt descriptors, the interrupt flag, and the
//! PC's devices that every x86 kernel drives itself: the 16550 UART, the
//! 8259 PICs, the 8254 PIT, the CMOS clock and the local APIC. It names no
//! hypervisor. Everything that only reads or builds values compiles for the
//! host, so the crates above it can be tested with plain `cargo test`; the
//! few functions that execute privileged instructions live in [`cpu`],
//! [`cr`] and [`io`], each a one-line `unsafe` wrapper.
#![no_std]

pub mod addr;
pub mod cpu;
pub mod cr;
pub mod debug;
pub mod desc;
pub mod io;
pub mod irq;
pub mod lapic;
pub mod layout;
pub mod multiboot;
pub mod paging;
pub mod pic;
pub mod pit;
pub mod rtc;
pub mod serial;
pub mod trampoline;
pub mod trap;

pub use addr::{Pfn, PhysAddr, VirtAddr, PAGE_SHIFT, PAGE_SIZE};
pub use paging::{Level, PagingMode, PteFlags};
