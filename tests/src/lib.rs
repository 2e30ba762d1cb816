//! The boot matrix: every environment the kernel claims to boot in, with
//! what its serial log must show. `cargo xtask test` boots each row;
//! `cargo xtask run` uses the same environments one at a time.
//!
//! Cross-crate host tests live in `tests/`: the real backends in one
//! registry (`registry.rs`), and mm's build driven through the real Xen and
//! lguest MMU code with fake hypervisors behind their transports
//! (`mm_through_backends.rs`).

pub mod gdb;
pub mod matrix;

pub use matrix::{matrix, BootCase, Check, Env, Expect, TimeTest, Want};
