//! i386 hardware, described once.
//!
//! This crate knows what the CPU knows and nothing else: address types, the
//! two pagetable formats (2-level and PAE), CPUID, control registers, port
//! I/O, segment and interrupt descriptors and the 16550 UART. It names no
//! hypervisor. Everything that only reads or builds values compiles for the
//! host, so the crates above it can be tested with plain `cargo test`; the
//! few functions that execute privileged instructions live in [`cpu`],
//! [`cr`] and [`io`], each a one-line `unsafe` wrapper.
#![no_std]

pub mod addr;
pub mod cpu;
pub mod cr;
pub mod desc;
pub mod io;
pub mod layout;
pub mod multiboot;
pub mod paging;
pub mod serial;
pub mod trampoline;
pub mod trap;

pub use addr::{Pfn, PhysAddr, VirtAddr, PAGE_SHIFT, PAGE_SIZE};
pub use paging::{Level, PagingMode, PteFlags};
