//! The multiboot v1 header every bare-metal image here carries (the
//! kernel, and the test loaders QEMU boots).

/// Assembly for a multiboot v1 header in section `.multiboot`: magic,
/// flags (bit 0: page-align modules; bit 1: give the memory map),
/// checksum. For `global_asm!`; the linker script must put `.multiboot` in
/// the first 8 KiB of the file.
#[macro_export]
macro_rules! multiboot_header {
    () => {
        concat!(
            ".pushsection .multiboot, \"a\"\n",
            ".align 4\n",
            ".long 0x1BADB002\n",
            ".long 0x00000003\n",
            ".long -(0x1BADB002 + 0x00000003)\n",
            ".popsection\n"
        )
    };
}

/// The multiboot v1 information structure (section 3.3 of the
/// specification): the one layout the kernel's parser, the test loader
/// that forges it and the loaders that read QEMU's all use.
pub mod info {
    /// eax at entry from a multiboot loader.
    pub const BOOTLOADER_MAGIC: u32 = 0x2BAD_B002;

    /// `flags` bits: which fields are valid.
    pub const FLAG_MEM: u32 = 1 << 0;
    pub const FLAG_CMDLINE: u32 = 1 << 2;
    pub const FLAG_MODS: u32 = 1 << 3;
    pub const FLAG_MMAP: u32 = 1 << 6;

    /// Byte offsets of the fields this project uses.
    pub const FLAGS: u32 = 0;
    pub const MEM_LOWER: u32 = 4;
    pub const MEM_UPPER: u32 = 8;
    pub const CMDLINE: u32 = 16;
    pub const MODS_COUNT: u32 = 20;
    pub const MODS_ADDR: u32 = 24;
    pub const MMAP_LENGTH: u32 = 44;
    pub const MMAP_ADDR: u32 = 48;
    /// Bytes up to and including the fields above and the ones between.
    pub const SIZE: u32 = 88;

    /// A module entry: start, end, string, reserved.
    pub const MOD_START: u32 = 0;
    pub const MOD_END: u32 = 4;
    pub const MOD_STRING: u32 = 8;
    pub const MOD_SIZE: u32 = 16;

    /// A memory map entry: `size` (not counting itself), then base (u64),
    /// length (u64), type (u32); the next entry is `size + 4` bytes on.
    pub const MMAP_SIZE: u32 = 0;
    pub const MMAP_BASE: u32 = 4;
    pub const MMAP_LEN: u32 = 12;
    pub const MMAP_TYPE: u32 = 20;
    /// The smallest valid `size`: base, length and type.
    pub const MMAP_ENTRY_MIN: u32 = 20;

    /// The structure as C lays it out, for the layout check below.
    #[repr(C)]
    pub struct MultibootInfo {
        pub flags: u32,
        pub mem_lower: u32,
        pub mem_upper: u32,
        pub boot_device: u32,
        pub cmdline: u32,
        pub mods_count: u32,
        pub mods_addr: u32,
        pub syms: [u32; 4],
        pub mmap_length: u32,
        pub mmap_addr: u32,
        pub drives_length: u32,
        pub drives_addr: u32,
        pub config_table: u32,
        pub boot_loader_name: u32,
        pub apm_table: u32,
        pub vbe: [u32; 4],
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use core::mem::{offset_of, size_of};

        #[test]
        fn offsets_are_the_specifications() {
            assert_eq!(offset_of!(MultibootInfo, flags) as u32, FLAGS);
            assert_eq!(offset_of!(MultibootInfo, mem_lower) as u32, MEM_LOWER);
            assert_eq!(offset_of!(MultibootInfo, mem_upper) as u32, MEM_UPPER);
            assert_eq!(offset_of!(MultibootInfo, cmdline) as u32, CMDLINE);
            assert_eq!(offset_of!(MultibootInfo, mods_count) as u32, MODS_COUNT);
            assert_eq!(offset_of!(MultibootInfo, mods_addr) as u32, MODS_ADDR);
            assert_eq!(offset_of!(MultibootInfo, mmap_length) as u32, MMAP_LENGTH);
            assert_eq!(offset_of!(MultibootInfo, mmap_addr) as u32, MMAP_ADDR);
            assert_eq!(size_of::<MultibootInfo>() as u32, SIZE);
        }
    }
}
