//! The boot matrix: every environment the kernel claims to boot in, with
//! what its serial log must show. `cargo xtask test` boots each row;
//! `cargo xtask run` uses the same environments one at a time.
//!
//! Cross-crate host tests (the real backends in one registry, mm driven
//! through a real backend) live in `tests/`.

pub mod matrix;

pub use matrix::{matrix, BootCase, Env, Expect, Want};
