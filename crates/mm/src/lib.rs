//! Early memory management: the boot page allocator and the kernel
//! pagetable, built the way Linux's "hooks to set up initial pagetable"
//! patch builds it.
//!
//! # Idempotent construction
//!
//! The kernel always boots on *someone's* pagetable. Bare hardware: the
//! trivial 2-level one the head code made. Xen PV: a complete PAE pagetable
//! built by the hypervisor, whose pages Xen has validated and made
//! read-only. lguest: a linear map the host made. So [`pagetable_init`]
//! never assumes an empty table. It allocates and fills an entry only where
//! nothing is present, and keeps every mapping already there:
//!
//! 1. `pagetable_setup_start(base)`: the backend prepares the kernel's root
//!    (`base`, Linux's swapper_pg_dir), e.g. by copying what it booted on.
//! 2. The direct map of low memory at `PAGE_OFFSET`, large pages where the
//!    CPU and backend allow and the kernel image is not in the way.
//! 3. The structure (pte pages, no entries) of the fixmap and of the
//!    permanent-kmap area.
//! 4. `pagetable_setup_done(base)`: the backend makes `base` live.
//!
//! Every new pagetable page is announced with `alloc_pt`/`alloc_pd` before
//! it is linked, and every entry is written through the backend, so a
//! backend can keep pagetable pages read-only (Xen) or tell a shadowing
//! host about each change (lguest).
//!
//! Kernel mappings share their pte pages among all pagetables: a pte page
//! found present is used in place, never copied.
//!
//! # Not naming backends
//!
//! This crate sees only the `Hypervisor` trait; it compiles for the host, where
//! tests drive it with simulated physical memory and a recording backend.

#![no_std]

pub mod bootmem;
pub mod check;
pub mod error;
pub mod fixmap;
pub mod frames;
pub mod highmem;
pub mod layout;
pub mod pagetable;
pub mod protect;
pub mod ptdump;
pub mod refs;
pub mod rewrite;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod space;
#[cfg(test)]
mod tests;
pub mod walk;

pub use bootmem::BootAlloc;
pub use error::MmError;
pub use layout::{KernelImage, Layout};
pub use pagetable::{pagetable_init, BuildStats, Caps, Pagetable, Phase};
