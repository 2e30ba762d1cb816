# debian.sh -- sourced by build-xen.sh and provision-dom0.sh (which define `die` and `here`
# first): the Debian version of Xen both use, an isolated apt configuration, and what to
# say when the archive no longer has that version.

# The one place the version lives: the hypervisor is built from this source package and
# dom0's toolstack (xl, xenstored, libxen*) is pinned to the same binary packages, so that
# both speak one domctl/sysctl interface. Debian keeps only a suite's current version:
# see archive_gone.
XEN_DEB_VERSION=$(tr -d ' \t\r\n' <"$here/VERSION")
[[ $XEN_DEB_VERSION =~ ^[0-9][0-9A-Za-z.+~:-]*-[0-9A-Za-z.+~]+$ ]] ||
  die "$here/VERSION: '$XEN_DEB_VERSION' is not a Debian version (like 4.17.5+72-g01140da4e8-1)"
DEBIAN_MIRROR=http://deb.debian.org/debian
DEBIAN_SECURITY=http://deb.debian.org/debian-security
DEBIAN_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# apt_isolated DIR LINE...: sets APT (an apt-get command) whose sources are the given
# sources.list LINEs and whose lists, cache and state live under DIR; /etc/apt and the
# system's lists stay untouched. DEP-11 metadata (the host's apt.conf.d may ask for it)
# is not fetched.
apt_isolated() {
  local dir=$1; shift
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
  printf '%s\n' "$@" >"$dir/sources.list"
  APT=(apt-get -o Dir::Etc::sourcelist="$dir/sources.list" -o Dir::Etc::sourceparts=-
       -o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir/cache"
       -o Dir::State::status=/dev/null
       -o APT::Sandbox::User=root   # a root-owned DIR is not writable for _apt
       -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
       -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
       -o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false)
}

# archive_gone LOG: if apt's LOG says the pinned version is not in the archive (no longer
# in the index, or its file answers 404), say so and how to move on; false otherwise.
archive_gone() {
  grep -qE '404 +Not Found|Version .* was not found|Can not find version|Unable to find a source package' "$1" || return 1
  cat >&2 <<MSG
Debian's archive no longer has Xen $XEN_DEB_VERSION (apt: $(grep -m1 -E '404|not found|Can not find|Unable to find' "$1")).
Debian keeps only the current version of each suite, so bookworm main has moved on.
Find its version with
  apt-cache madison xen      (with a deb-src line for bookworm main), or
  https://packages.debian.org/source/bookworm/xen
then put it in xtask/xen/VERSION (the hypervisor build and the dom0 toolstack both read
it) and check that xtask/xen/pae-pdpte-accessed.patch still applies.
MSG
}
