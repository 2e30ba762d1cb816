#!/usr/bin/env bash
# build-xen.sh OUTDIR -- build a Xen 4.17 hypervisor that can run 32-bit PV guests.
#
# Debian bookworm ships Xen 4.17 with CONFIG_PV32 off, so 32-bit PV dom0s are refused.
# We rebuild only the hypervisor from Debian's own source package, starting from the
# config of Debian's binary package, with PV32 on, CET off, and our patches applied
# (PATCHES below; each file's header says what it fixes and why). Output: OUTDIR/xen-4.17-pv32 (ELF32 multiboot image for
# `qemu-system-x86_64 -kernel`) and OUTDIR/xen-4.17-pv32.config. OUTDIR also holds the
# apt state, the downloads and the build tree; build output goes to OUTDIR/build.log.
set -euo pipefail

DEPS=(flex bison build-essential python3 dpkg-dev xz-utils patch lsb-release debian-archive-keyring)

die() { echo "xen: ERROR: $*" >&2; exit 1; }
[[ $# -eq 1 && -n $1 ]] || die "usage: $0 OUTDIR"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self=$here/$(basename "${BASH_SOURCE[0]}")
# XEN_DEB_VERSION (from VERSION: bookworm main; bookworm-security serves no sources),
# apt_isolated, archive_gone.
source "$here/debian.sh"
XEN_UPSTREAM=${XEN_DEB_VERSION%-*}
# Our patches to Xen, applied in this order after Debian's series.
PATCHES=(pae-pdpte-accessed.patch svm-sync-cr2.patch)
patchfiles=()
for p in "${PATCHES[@]}"; do
  [[ -f $here/$p ]] || die "missing $here/$p"
  patchfiles+=("$here/$p")
done
mkdir -p "$1"
out=$(cd "$1" && pwd)
art=$out/xen-4.17-pv32 stamp=$out/xen-4.17-pv32.stamp log=$out/build.log

# Cache key: this script (config edits, the patch list), the version and the patches.
hash=$(cat "$self" "$here/debian.sh" "$here/VERSION" "${patchfiles[@]}" | sha256sum | cut -d' ' -f1)
cache_hit() { [[ -s $art && -s $art.config && -f $stamp && $(<"$stamp") == "$hash" ]]; }
if cache_hit; then echo "xen: up to date: $art"; exit 0; fi

# Serialise concurrent callers (e.g. parallel test jobs) on the same OUTDIR; whoever
# waited re-checks the cache, since the first one may just have built it.
exec 9>"$out/.lock"
flock 9
if cache_hit; then echo "xen: up to date: $art"; exit 0; fi

: >"$log"
stage=""
trap 'rc=$?; if [[ $rc -ne 0 ]]; then echo "xen: FAILED during: $stage (exit $rc); last lines of $log:" >&2; tail -n 40 "$log" >&2; fi' EXIT
# run CMD...: append its output to the log, so the terminal shows only stage lines.
run() { echo "+ $*" >>"$log"; "$@" >>"$log" 2>&1; }

# 1. Build dependencies: install only what is missing (we run as root).
missing=()
for p in "${DEPS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  stage="installing build dependencies"
  echo "xen: installing missing build dependencies: ${missing[*]} ..."
  [[ $(id -u) -eq 0 ]] || die "need root to apt-get install ${missing[*]}"
  run apt-get update
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

# 2. Downloads, with an isolated apt configuration so /etc/apt and the system's package
#    lists stay untouched. apt verifies the .dsc and .deb against the signed indices;
#    dpkg-source later checks the tarballs against the .dsc.
dl=$out/dl apt=$out/apt
dsc=$dl/xen_$XEN_DEB_VERSION.dsc
deb=$dl/xen-hypervisor-4.17-amd64_${XEN_DEB_VERSION}_amd64.deb
if [[ ! -f $dsc || ! -f $deb || ! -f $dl/xen_$XEN_UPSTREAM.orig.tar.xz ]]; then
  stage="fetching Debian packages"
  echo "xen: fetching Debian source package xen=$XEN_DEB_VERSION and its hypervisor .deb ..."
  apt_isolated "$apt" "deb [signed-by=$DEBIAN_KEYRING] $DEBIAN_MIRROR bookworm main" \
    "deb-src [signed-by=$DEBIAN_KEYRING] $DEBIAN_MIRROR bookworm main"
  run "${APT[@]}" update
  # Download into a scratch dir and move in only on success: no half files in the cache.
  rm -rf "$dl.tmp" && mkdir -p "$dl.tmp"
  if ! (cd "$dl.tmp" && run "${APT[@]}" source --download-only "xen=$XEN_DEB_VERSION" \
                     && run "${APT[@]}" download "xen-hypervisor-4.17-amd64=$XEN_DEB_VERSION"); then
    archive_gone "$log" && die "Xen $XEN_DEB_VERSION is gone from Debian's archive (see above)"
    die "downloading xen=$XEN_DEB_VERSION failed"
  fi
  rm -rf "$dl" && mv "$dl.tmp" "$dl"
fi

# 3. Fresh source tree on every build, so the patch always meets pristine files and no
#    stale objects survive a change of config. dpkg-source unpacks the orig tarball and
#    applies Debian's quilt series (3 of its 25 patches touch xen/: the version banner,
#    an objdump locale fix, an Intel PMU fix), i.e. the tree Debian's config was made for.
stage="unpacking source"
echo "xen: unpacking source and applying Debian's patches + ${PATCHES[*]} ..."
src=$out/build/xen-$XEN_UPSTREAM
rm -rf "$out/build" && mkdir -p "$out/build"
run dpkg-source -x "$dsc" "$src"
# Idempotent even on a reused tree: skip a patch whose reverse applies cleanly (already
# applied).
for pf in "${patchfiles[@]}"; do
  if (cd "$src" && patch -p1 -R -s -f --dry-run <"$pf" >/dev/null 2>&1); then
    echo "+ patch already applied: $pf" >>"$log"
  else
    (cd "$src" && run patch -p1 -N <"$pf")
  fi
done

# 4. Config: Debian's binary-package config, with PV32 on. CET is turned off because Xen
#    disables PV32 at boot whenever it uses CET ("Disabling PV32 due to CET", setup.c),
#    which would silently undo the point of this build on CET-capable CPUs.
stage="configuring"
echo "xen: configuring (Debian's config + CONFIG_PV32=y, no CET) ..."
rm -rf "$out/build/deb" && run dpkg -x "$deb" "$out/build/deb"
cfg=$src/xen/.config
sed -e '/^CONFIG_PV32=/d; /^# CONFIG_PV32 is not set/d' \
    -e '/^CONFIG_XEN_SHSTK=/d; /^# CONFIG_XEN_SHSTK is not set/d' \
    -e '/^CONFIG_XEN_IBT=/d; /^# CONFIG_XEN_IBT is not set/d' \
    "$out/build/deb/boot/xen-4.17-amd64.config" >"$cfg"
printf 'CONFIG_PV32=y\n# CONFIG_XEN_SHSTK is not set\n# CONFIG_XEN_IBT is not set\n' >>"$cfg"

# Environment as in debian/rules: no userland CFLAGS etc. leak into the hypervisor;
# no network at build time; DEB_* feed Debian's banner patch. Xen's Config.mk defaults
# PYTHON to `python`, which plain Debian lacks, so name python3 explicitly. C locale
# keeps tool output that the Makefiles parse stable.
MAKE_ENV=(env -u CFLAGS -u CXXFLAGS -u CPPFLAGS -u LDFLAGS LC_ALL=C WGET=/bin/false GIT=/bin/false
  "DEB_VERSION=$XEN_DEB_VERSION+pvops-pv32"
  "DEB_MAINTAINER=$(sed -ne 's/^Maintainer: //p' "$src/debian/control")")
MAKE_ARGS=(-C "$src/xen" XEN_TARGET_ARCH=x86_64 PYTHON=/usr/bin/python3 V=1)
run "${MAKE_ENV[@]}" make "${MAKE_ARGS[@]}" olddefconfig
# olddefconfig silently drops symbols whose dependencies fail: check the result.
grep -qx 'CONFIG_PV32=y' "$cfg" || die "CONFIG_PV32=y did not survive olddefconfig"
! grep -qE '^CONFIG_XEN_(SHSTK|IBT)=y' "$cfg" || die "CET options still enabled"

# 5. Build.
stage="building hypervisor"
echo "xen: building hypervisor (about 2 minutes) ..."
t0=$SECONDS
run "${MAKE_ENV[@]}" make "${MAKE_ARGS[@]}" -j2
# Sanity: qemu's -kernel wants the ELF32 (class 1) multiboot image xen/xen.
[[ $(od -An -tx1 -N5 "$src/xen/xen" | tr -d ' ') == 7f454c4601 ]] || die "xen/xen is not ELF32"

# 6. Publish atomically, stamp last: an interrupted run never looks like a cache hit.
stage="installing artifact"
cp "$src/xen/xen" "$art.tmp" && mv -f "$art.tmp" "$art"
cp "$cfg" "$art.config.tmp" && mv -f "$art.config.tmp" "$art.config"
echo "$hash" >"$stamp"
echo "xen: built $art in $((SECONDS - t0)) s"
