//! The protocol of the workload init runs, shared by the processes that
//! take part in it and tested on the host: what a child writes into its
//! memory and how it sums it (`pattern`), what its exit code says
//! (`child_code`), and what init's own exit code says (`failure`).
//!
//! The programs themselves are the binaries in `src/bin`; the kernel
//! embeds them (`kernel/src/programs.rs`).
#![cfg_attr(not(test), no_std)]

pub mod child_code;
pub mod failure;
pub mod pattern;
