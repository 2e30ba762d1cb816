//! The library every pvops user program links: the system calls of
//! `user_abi` as typed functions, `print!`/`println!` on the console, the
//! entry glue (`entry!`) and a panic handler.
//!
//! A program is a `no_std`, `no_main` binary for the kernel's own target,
//! running in ring 3:
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! user_lib::entry!(main);
//!
//! fn main(arg: u32) -> u32 {
//!     user_lib::println!("hello from pid {}", user_lib::getpid());
//!     0 // to exit()
//! }
//! ```
//!
//! Every call returns `Result<_, Errno>` where the kernel can refuse it.
//! The library also builds for the host (where every call fails with
//! ENOSYS: there is no pvops kernel under a host process), so the parts
//! that are plain logic are tested with `cargo test`.
#![cfg_attr(not(test), no_std)]

pub mod console;
mod entry;
mod errno;
pub mod memory;
mod panic;
mod process;
pub mod raw;

pub use entry::start;
pub use errno::Errno;
pub use memory::{mmap, Region};
pub use panic::PANIC_EXIT;
pub use process::{
    exit, fork, getpid, getppid, kill, sleep, spawn, time, wait, yield_now, Fork, Pid, Status,
};
pub use user_abi as abi;
