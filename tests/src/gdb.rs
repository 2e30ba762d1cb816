//! gdb sessions, run by `cargo xtask test` in batch mode (`cargo xtask gdb
//! --batch`): the debugging workflow the README describes, proven against
//! a native boot and a Xen PV one. Each breaks in the generic
//! `mm::pagetable::pagetable_init` by its path (natively the kernel runs
//! its instance for paravirt's native MMU ops, under Xen the one for
//! `dyn Mmu`: the session shows which), prints a backtrace with
//! Rust names, walks the live pagetable from CR3 (`pt`) before and after
//! the kernel builds its own, and asks for the backend (`hv`).

use crate::Env;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GdbCase {
    pub name: &'static str,
    pub env: Env,
    pub cpu: &'static str,
    pub mem: &'static str,
    pub append: &'static str,
    /// gdb commands, after connecting.
    pub commands: &'static [&'static str],
    /// Text gdb's output must contain.
    pub expect: &'static [&'static str],
}

/// Text no session may print: a command of ours that failed, a name gdb
/// did not find.
pub const NEVER: &[&str] = &["Python Exception", "Error occurred in Python", "not defined", "No symbol"];

/// Stop in pagetable_init on the boot pagetable, then in the self-check on
/// the kernel's own, and end the boot.
const SESSION: &[&str] = &[
    "bp mm::pagetable::pagetable_init",
    "bp kernel::selfcheck::run",
    "continue",
    "bt 4",
    "pt",
    "hv",
    "continue",
    "pt",
    "hv",
    "kill",
];

/// The breakpoint's hit, by the generic function's full name: natively
/// the kernel runs the build monomorphized for paravirt's native MMU ops
/// (`devirt!`), under Xen the instance for `dyn Mmu`. (`bp` set one
/// breakpoint per instance, numbered in address order: the hits are
/// matched by name.)
const BROKE_NATIVE: &str = ", mm::pagetable::pagetable_init<paravirt::native::NativeMmu> (";
const BROKE_DYN: &str = ", mm::pagetable::pagetable_init<dyn paravirt::mmu::Mmu> (";
/// The second stop, and the frames the backtrace from the first shows in
/// every environment.
const SELFCHECK: &str = ", kernel::selfcheck::run (";
const CALLER: &str = " in kernel::pagetable::build (";
const ITS_CALLER: &str = " in kernel::start_kernel (";

pub fn gdb_rows() -> Vec<GdbCase> {
    vec![
        GdbCase {
            name: "gdb-native-max",
            env: Env::Qemu,
            cpu: "max",
            mem: "128M",
            append: "timetest=short",
            commands: SESSION,
            expect: &[
                BROKE_NATIVE,
                CALLER,
                ITS_CALLER,
                // The head code's boot pagetable: 2-level, low memory at 0
                // and at PAGE_OFFSET, read-write, executable.
                "pt: 2-level, cr3 ",
                "pt: 0x00000000-",
                "pt: 0xc0000000-",
                "RW x  ker      4K -> pa 0x0\n",
                "hv: backend native (backend_native::Native",
                "hv: counters: none",
                // The kernel's own: PAE (a -cpu max), text read-only and
                // executable at 1 MiB, the rest NX, large pages.
                SELFCHECK,
                "pt: PAE, cr3 ",
                "pt: 0xc0100000-",
                "ro x  ker GLB  4K -> pa 0x100000\n",
                "RW NX ker GLB  2M",
            ],
        },
        GdbCase {
            name: "gdb-xen-pv",
            env: Env::Xen,
            cpu: "max",
            mem: "128M",
            append: "timetest=short",
            commands: SESSION,
            expect: &[
                BROKE_DYN,
                CALLER,
                ITS_CALLER,
                " in xen_start (",
                // The hardware's pagetable is Xen's 4-level one; slot 0
                // holds the dom0's L3: Xen's initial mapping of the image.
                "pt: long mode (4-level), cr3 ",
                "pt: 0xc0000000-",
                "hv: backend xen (backend_xen::XenPv",
                "hv: counters: hypercalls=",
                // After the build: text read-only, the rest NX, pagetable
                // pages read-only (Xen's rule).
                SELFCHECK,
                "ro x  ker",
                "ro NX ker",
                "mmu_update_entries=",
            ],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_session_ends_the_boot_and_names_are_unique() {
        let rows = gdb_rows();
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r.commands.last(), Some(&"kill"), "{}: a session ends its boot", r.name);
            assert!(rows[i + 1..].iter().all(|o| o.name != r.name));
            assert!(crate::matrix().iter().all(|m| m.name != r.name), "{} is also a matrix row", r.name);
        }
    }
}
