//! The user programs, embedded in the image: the kernel has no file
//! system, so `spawn` (and the start of init) find a program here by name.
//!
//! `cargo xtask` builds `user/programs` for this target before the kernel
//! and names the directory of the results in PVOPS_USER_PROGRAMS; it has
//! checked each is a static i386 executable linked at 0x08048000 with no
//! relocations to apply, so loading one is copying its PT_LOAD segments.
//! Each file starts on a page boundary in the image: its segments'
//! offsets are congruent to their addresses modulo the page size, so a
//! read-only page of one could be mapped where it is rather than copied.

pub struct Program {
    pub name: &'static str,
    /// The ELF file, as built.
    pub elf: &'static [u8],
}

#[repr(C, align(4096))]
struct PageAligned<T: ?Sized>(T);

/// `Program { name, elf }` for the file `name` of PVOPS_USER_PROGRAMS.
macro_rules! embed {
    ($name:literal) => {{
        // include_bytes! takes a literal, so the path is spelled twice.
        static ELF: PageAligned<
            [u8; include_bytes!(concat!(env!("PVOPS_USER_PROGRAMS"), "/", $name)).len()],
        > = PageAligned(*include_bytes!(concat!(env!("PVOPS_USER_PROGRAMS"), "/", $name)));
        Program { name: $name, elf: &ELF.0 }
    }};
}

pub static PROGRAMS: &[Program] =
    &[embed!("init"), embed!("hello"), embed!("spinner"), embed!("bad-kernel-read"), embed!("bad-ud2")];

pub fn find(name: &str) -> Option<&'static Program> {
    PROGRAMS.iter().find(|p| p.name == name)
}
