//! Devirtualization: once the backend is chosen, the hot paths run
//! monomorphized for its MMU ops' own type.
//!
//! `mm` is generic over `M: Mmu + ?Sized`. Instantiated with `dyn Mmu`
//! every hook is an indirect call whose body cannot be inlined; with the
//! concrete type the native hooks (a store, nothing at all) inline into
//! the loops that call them. The kernel cannot name a backend's types,
//! but it can name paravirt's native MMU ops, which the native backend
//! (and PVH) use unchanged: [`devirt!`] asks, once per call site, whether
//! the chosen ops are those, and runs its body compiled for
//! `&NativeMmu` if so, for `&dyn Mmu` otherwise, as Linux patches its
//! native paravirt calls into direct ones and leaves a hypervisor's
//! indirect. Under a hypervisor the hooks are hypercalls, next to which
//! an indirect call costs nothing worth a copy of the code.
//!
//! Where it is used: the boot build, and the process path (spawn, fork,
//! exit, page faults, munmap, the switch). `kernel/src/dispatch.rs`
//! measures what it saves.

/// `devirt!(mmu, |m| body)`: `body` with `m` bound to `mmu` (a `&dyn
/// Mmu`) as `&paravirt::native::NativeMmu` if that is its type, else as
/// itself. The body is compiled twice.
macro_rules! devirt {
    ($mmu:expr, |$m:ident| $body:expr) => {{
        let mmu: &'static dyn paravirt::Mmu = $mmu;
        match paravirt::native::as_native(mmu) {
            Some($m) => $body,
            None => {
                let $m = mmu;
                $body
            }
        }
    }};
}

pub(crate) use devirt;
