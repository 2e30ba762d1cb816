//! lguest-host: a small lguest host of our own, to boot-test the kernel's
//! lguest backend. This library is the host's logic, written against
//! host-physical memory through one translation (`phys.rs`) so that it
//! runs, and is tested, on the development machine too; the binary
//! (`main.rs`) adds what only the machine has: the head code, the
//! Switcher, the host's timer and the debug-register watch, the Launcher
//! and the exit device.
//!
//! lguest (Linux 2.6.23 to 4.13) ran a Linux guest on a Linux host with no
//! hardware virtualization at all: the guest kernel runs in ring 1, where
//! every privileged instruction faults, and asks the host for what it
//! cannot do itself through hypercalls. It no longer exists, so this crate
//! is the host, booted by QEMU (TCG) as a bare-metal multiboot kernel,
//! with the guest kernel as its module. It implements the guest ABI of
//! Linux 2.6.24.
//!
//! # How it works
//!
//! - **The Launcher** (`launcher.rs`): the guest gets a block of host RAM
//!   as its physical memory, its ELF loaded there, `boot_params` with
//!   `hardware_subarch = 1`, and a linear pagetable (all memory at 0 and at
//!   PAGE_OFFSET). It starts in ring 1 at its ELF entry.
//! - **The Switcher** (`switcher.rs`): the host owns the real GDT, IDT and
//!   TSS. They, the trap entry code and a ring-0 stack live in the top
//!   4 MiB (the whole host is linked at 0xFFC00000), mapped at the same
//!   address in the host's pagetable and in every pagetable the guest runs
//!   on, so a trap from the guest can reach the host, which then switches
//!   to its own pagetable.
//! - **Shadow paging** (`shadow.rs`): the guest's pagetables are never
//!   loaded into CR3; the host builds shadow tables from them on demand,
//!   fault by fault, and the guest must announce every change (SET_PTE,
//!   SET_PMD, FLUSH_TLB, NEW_PGTABLE). At the end an audit (`audit.rs`)
//!   checks that every shadow entry is still backed by the guest's tables.
//! - **Hypercalls** (`hypercall.rs`) through vector 0x1f, the only gate
//!   ring 1 may use, plus the async ring in `lguest_data`; faults the guest
//!   must handle are delivered to the handlers it registered (`deliver.rs`);
//!   port I/O is skipped (`emulate.rs`). User mode (ring 3) traps into
//!   the host the same way, its system calls (`int $0x80`) included
//!   (`syscall.rs`), and is delivered onto the stack SET_STACK named.
//! - **Interrupts and time** (`interrupts.rs`, `clock.rs`): the guest's
//!   one-shot timer (SET_CLOCKEVENT) raises irq 0, which is delivered by
//!   2.6.24's rules before an entry into the guest (its virtual interrupt
//!   flag, its blocked irqs, its noirq window); HALT sleeps until then. The
//!   host states its TSC rate and the wall clock in `lguest_data`.
//! - **The verdict** (`outcome.rs`): the guest prints through NOTIFY; the
//!   host reads its `Test result:` line, adds its own findings, prints its
//!   counters and ends QEMU through isa-debug-exit with the status.
//!
#![no_std]
// A run-ending error carries its message inline (there is no allocator);
// errors are rare, so moving 200 bytes on that path costs nothing.
#![allow(clippy::result_large_err)]

pub mod abi;
pub mod audit;
pub mod clock;
pub mod console;
pub mod deliver;
pub mod emulate;
pub mod exits;
pub mod fatal;
pub mod gpt;
pub mod guest_mem;
pub mod hypercall;
pub mod idt;
pub mod interrupts;
pub mod layout;
pub mod phys;
pub mod pool;
pub mod shadow;
pub mod stats;
pub mod syscall;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod user_mode_tests;
pub mod vm;
pub mod watchdog;
