//! Shared by the project's own boot loaders (`tests/mbloader`,
//! `tests/lguest-host`): both are booted by QEMU's multiboot loader, get
//! the kernel as module 0, and load its ELF segments; mbloader's PVH
//! scenarios also read its notes.
#![no_std]

pub mod elf;
pub mod multiboot;
pub mod notes;
