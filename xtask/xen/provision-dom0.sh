#!/usr/bin/env bash
# provision-dom0.sh OUTDIR -- a Linux dom0 with Xen's toolstack, from Debian packages, for
# the domU rows. Output:
#   OUTDIR/root          the unpacked packages; xtask picks dom0's initramfs out of it
#                        (xtask/src/domu.rs: programs, their libraries, modules)
#   OUTDIR/vmlinux       Debian's kernel, uncompressed: Xen loads an ELF at once, while
#                        inflating the bzImage's xz costs it ~2.5 s under TCG
#   OUTDIR/manifest.txt  the exact package versions
# Packages, through an isolated apt configuration (/etc/apt stays untouched):
#   xen-utils-4.17 xenstore-utils libxen*   pinned to the hypervisor's version (VERSION):
#                                           one domctl interface for Xen and its tools
#   linux-image-amd64's current kernel      only its vmlinuz and the Xen driver modules
#   libc6 libgcc-s1 libuuid1 zlib1g liblzma5 libzstd1 libyajl2 busybox-static
# Cached: a second run with the same script, debian.sh and VERSION does nothing.
# `provision-dom0.sh --cached OUTDIR` only says (exit status) whether that is so.
set -euo pipefail

XEN_PKGS=(xen-utils-4.17 xenstore-utils libxenmisc4.17 libxenstore4 libxencall1
  libxendevicemodel1 libxenevtchn1 libxenforeignmemory1 libxengnttab1 libxentoolcore1
  libxentoollog1 libxenhypfs1)
# What those programs link against (libgcc-s1: glibc dlopen()s libgcc_s for xl's
# pthread_cancel), and the userland. Not needed despite the Depends: xen-utils-common
# (xtask writes xl.conf), python3, libext2fs2 (pygrub), libncurses6 (xentop).
OTHER_PKGS=(libc6 libgcc-s1 libuuid1 zlib1g liblzma5 libzstd1 libyajl2 busybox-static)
DEPS=(xz-utils debian-archive-keyring)

die() { echo "dom0: ERROR: $*" >&2; exit 1; }
check_only=0
if [[ ${1:-} == --cached ]]; then check_only=1; shift; fi
[[ $# -eq 1 && -n $1 ]] || die "usage: $0 [--cached] OUTDIR"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self=$here/$(basename "${BASH_SOURCE[0]}")
# XEN_DEB_VERSION, DEBIAN_*, apt_isolated, archive_gone.
source "$here/debian.sh"
mkdir -p "$1"
out=$(cd "$1" && pwd)
stamp=$out/dom0.stamp log=$out/provision.log

hash=$(cat "$self" "$here/debian.sh" "$here/VERSION" | sha256sum | cut -d' ' -f1)
cache_hit() { [[ -f $stamp && $(<"$stamp") == "$hash" && -s $out/vmlinux && -d $out/root ]]; }
if ((check_only)); then cache_hit; exit; fi
if cache_hit; then echo "dom0: up to date: $out"; exit 0; fi
# Concurrent callers wait for the first; it may just have provisioned everything.
exec 9>"$out/.lock"
flock 9
if cache_hit; then echo "dom0: up to date: $out"; exit 0; fi
t0=$SECONDS
: >"$log"
run() { echo "+ $*" >>"$log"; "$@" >>"$log" 2>&1; }

# 1. Host tools: install only what is missing (as root, like the Xen build).
missing=()
for p in "${DEPS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "dom0: installing missing host tools: ${missing[*]} ..."
  [[ $(id -u) -eq 0 ]] || die "need root to apt-get install ${missing[*]}"
  run apt-get update || die "apt-get update failed (see $log)"
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" ||
    die "installing ${missing[*]} failed (see $log)"
fi

# 2. Indices: bookworm, its updates, and security (kernel and libc updates live there;
#    every package but the pinned Xen ones takes the newest of them).
echo "dom0: apt-get update (isolated lists in $out/apt) ..."
apt_isolated "$out/apt" \
  "deb [signed-by=$DEBIAN_KEYRING] $DEBIAN_MIRROR bookworm main" \
  "deb [signed-by=$DEBIAN_KEYRING] $DEBIAN_MIRROR bookworm-updates main" \
  "deb [signed-by=$DEBIAN_KEYRING] $DEBIAN_SECURITY bookworm-security main"
run "${APT[@]}" update || die "apt-get update failed (see $log)"
APT_CACHE=(apt-cache "${APT[@]:1}")

# The kernel floats with linux-image-amd64 (today linux-image-6.1.0-N-amd64): old kernel
# ABIs leave the archive too, so pinning one would only break later.
kpkg=$("${APT_CACHE[@]}" depends --no-recommends --no-suggests linux-image-amd64 2>>"$log" |
  awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
[[ $kpkg == linux-image-* ]] || die "cannot tell which kernel linux-image-amd64 depends on (see $log)"

# 3. Downloads into a scratch directory, moved in only when complete.
pkgs=()
for p in "${XEN_PKGS[@]}"; do pkgs+=("$p=$XEN_DEB_VERSION"); done
pkgs+=("${OTHER_PKGS[@]}" "$kpkg")
echo "dom0: downloading ${#pkgs[@]} packages (Xen tools $XEN_DEB_VERSION, kernel $kpkg) ..."
rm -rf "$out/debs.tmp" && mkdir -p "$out/debs.tmp"
if ! (cd "$out/debs.tmp" && run "${APT[@]}" download "${pkgs[@]}"); then
  archive_gone "$log" && die "Xen $XEN_DEB_VERSION is gone from Debian's archive (see above)"
  die "apt-get download failed (see $log)"
fi
rm -rf "$out/debs" && mv "$out/debs.tmp" "$out/debs"

# 4. Unpack into a fresh tree, checking the pinned versions.
echo "dom0: unpacking ..."
root=$out/root
rm -rf "$root" "$out/vmlinux" && mkdir -p "$root"
: >"$out/manifest.txt.tmp"
for p in "${pkgs[@]}"; do
  name=${p%%=*}
  debs=("$out/debs/${name}_"*.deb)
  [[ ${#debs[@]} -eq 1 && -f ${debs[0]} ]] || die "expected one .deb of $name in $out/debs"
  ver=$(dpkg-deb -f "${debs[0]}" Version)
  [[ $p != *=* || $ver == "${p#*=}" ]] || die "${debs[0]} is version $ver, not ${p#*=}"
  if [[ $name == linux-image-* ]]; then
    # The kernel and the Xen driver modules only: the whole package unpacks to ~400 MB.
    dpkg-deb --fsys-tarfile "${debs[0]}" | tar -x -C "$root" --wildcards \
      './boot/vmlinuz-*' './lib/modules/*/modules.*' './lib/modules/*/kernel/drivers/xen/*'
  else
    dpkg -x "${debs[0]}" "$root"
  fi
  echo "package $name $ver" >>"$out/manifest.txt.tmp"
done

# 5. vmlinux: the compressed payload in the bzImage starts at a compressor's magic (the
#    same search as Linux's scripts/extract-vmlinux); the first that inflates to an ELF.
vmlinuz=("$root"/boot/vmlinuz-*)
[[ -f ${vmlinuz[0]} ]] || die "no /boot/vmlinuz-* in $kpkg"
extract() { # MAGIC COMMAND...
  local magic=$1 off; shift
  for off in $(LC_ALL=C grep -obUaP "$magic" "${vmlinuz[0]}" | cut -d: -f1); do
    tail -c +$((off + 1)) "${vmlinuz[0]}" | "$@" >"$out/vmlinux.tmp" 2>/dev/null || true
    if [[ $(head -c 4 "$out/vmlinux.tmp" | od -An -tx1 | tr -d ' ') == 7f454c46 ]]; then
      mv "$out/vmlinux.tmp" "$out/vmlinux"
      return 0
    fi
  done
  return 1
}
extract '\xfd7zXZ\x00' xz -dc --single-stream || extract '\x1f\x8b\x08' gzip -dc ||
  die "no xz or gzip payload in ${vmlinuz[0]} inflates to an ELF vmlinux"
rm -f "$out/vmlinux.tmp"

echo "kernel ${vmlinuz[0]##*/vmlinuz-}" >>"$out/manifest.txt.tmp"
mv "$out/manifest.txt.tmp" "$out/manifest.txt"
echo "$hash" >"$stamp"
echo "dom0: provisioned $out in $((SECONDS - t0)) s (kernel ${vmlinuz[0]##*/vmlinuz-})"
