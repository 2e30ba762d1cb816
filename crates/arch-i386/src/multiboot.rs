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
