//! The user programs embedded in the image (placeholder until the build
//! embeds them).

pub struct Program {
    pub name: &'static str,
    pub elf: &'static [u8],
}

pub static PROGRAMS: &[Program] = &[];

pub fn find(name: &str) -> Option<&'static Program> {
    PROGRAMS.iter().find(|p| p.name == name)
}
