#!/usr/bin/env bash
# The README's two set-up commands on a stock Debian bookworm, as root, with Debian's own python3
# and no other Python: debootstrap a minimal bookworm (minbase: no python3 at all) into WORKDIR,
# git-clone this checkout's HEAD into it, and run the two commands in a chroot with an empty
# environment (no pip settings, no PATH of this machine's; /opt and its wheels are not mounted, so
# pip downloads from PyPI, as a stock machine does; only this network's local CA certificates are
# copied in, see below). The commands are read from README.md's first
# bash block under "## Set-up", so the check stays the README's.
#
#   scripts/check_setup_debian.sh [--as-written] [WORKDIR]     (as root; WORKDIR: /tmp/latentexp-debian)
#
# By default two things are appended, and printed: `trainer.max_epochs=1` to the first command's
# `latentexp train` (the default run is up to 100 epochs, about an hour on a CPU) and
# `-m "not slow"` to the test command (the fast tier; the full suite is minutes more on 2 cores).
# --as-written runs both exactly as the README gives them. Needs: root, mount, network to the
# Debian mirror and PyPI, about 15 GB free. Each run starts from a fresh WORKDIR.
set -euo pipefail
as_written=0
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi
if [ "${1:-}" = "--as-written" ]; then as_written=1; shift; fi
work=${1:-/tmp/latentexp-debian}
repo=$(cd "$(dirname "$0")/.." && pwd)
root=$work/rootfs
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" = 0 ] || { echo "run as root (debootstrap, mount, chroot)" >&2; exit 2; }

readme_commands() {  # the lines of the first ```bash block after "## Set-up"
    awk '/^## Set-up/ {s = 1; next} s && /^```bash/ {b = 1; next} b && /^```/ {exit} b {print}' \
        "$repo/README.md"
}
mapfile -t commands < <(readme_commands)
if [ "${#commands[@]}" != 2 ]; then
    echo "README.md's set-up block has ${#commands[@]} lines, expected 2:" >&2
    printf '  %s\n' "${commands[@]}" >&2
    exit 2
fi
install=${commands[0]} tests=${commands[1]}
if [ "$as_written" = 0 ]; then
    case $install in
        *"latentexp train") install="$install trainer.max_epochs=1" ;;
        *) echo "the first command does not end in 'latentexp train': $install" >&2; exit 2 ;;
    esac
    tests="$tests -m \"not slow\""
fi

mounted=()
cleanup() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[i]}" || umount -l "${mounted[i]}"; done
}
trap cleanup EXIT
work=$(realpath -m -- "$work")  # /proc/mounts lists absolute paths: compare like with like
if grep -q " $work/" /proc/mounts; then
    echo "something is still mounted under $work; unmount it first:" >&2
    grep " $work/" /proc/mounts >&2
    exit 2
fi
rm -rf --one-file-system -- "$work"  # never into a mount a killed run left behind (its /dev)
mkdir -p "$work"
stamp() { date -u +%FT%TZ; }
step() { echo; echo "== $(stamp) $*"; }

step "host: $(uname -m), $(nproc) CPUs, $(df -h --output=avail "$work" | tail -1 | tr -d ' ') free under $work"
command -v debootstrap > /dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap > /dev/null; }
step "debootstrap --variant=minbase bookworm from $mirror"
t0=$SECONDS
debootstrap --variant=minbase bookworm "$root" "$mirror" > "$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log"; exit 1; }
echo "debootstrap: $((SECONDS - t0)) s, $(du -shx "$root" | cut -f1)"

git clone --quiet "$repo" "$root/root/latentexp"
echo "clone of $(git -C "$repo" rev-parse --short HEAD) ($(git -C "$repo" log -1 --format=%s | cut -c1-70))"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# This machine's network reaches PyPI through a TLS-intercepting proxy whose CA is one of the host's
# local certificates: the chroot gets them where a machine on this network keeps them
# (/usr/local/share/ca-certificates), and the ca-certificates package that command 1 installs adds
# them to the system bundle, which Debian's pip uses. A machine on an ordinary network has none.
shopt -s nullglob
local_cas=(/usr/local/share/ca-certificates/*.crt)
shopt -u nullglob
mkdir -p "$root/usr/local/share/ca-certificates"
[ "${#local_cas[@]}" = 0 ] || cp "${local_cas[@]}" "$root/usr/local/share/ca-certificates/"
echo "local CA certificates given to the chroot: ${#local_cas[@]}"
for m in proc sys dev dev/pts dev/shm; do mkdir -p "$root/$m"; done
mount -t proc proc "$root/proc"; mounted+=("$root/proc")
mount -t sysfs -o ro sysfs "$root/sys"; mounted+=("$root/sys")
mount --bind /dev "$root/dev"; mounted+=("$root/dev")
mount --bind /dev/pts "$root/dev/pts"; mounted+=("$root/dev/pts")
mount -t tmpfs -o size=2g tmpfs "$root/dev/shm"; mounted+=("$root/dev/shm")

in_chroot() {  # as root in the chroot, in the clone, with the environment a root login has
    env -i HOME=/root LANG=C.UTF-8 TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        chroot "$root" /bin/bash -c "cd /root/latentexp && $1"
}
step "before: $(in_chroot 'echo "python3: $(command -v python3 || echo none), python: $(command -v python || echo none), pip: $(command -v pip || echo none)"')"

step "command 1: $install"
t0=$SECONDS
rc1=0; in_chroot "$install" || rc1=$?
s1=$((SECONDS - t0))
echo "command 1: exit $rc1, $((s1 / 60)) min $((s1 % 60)) s"

step "after: $(in_chroot 'echo "python3: $(command -v python3) ($(python3 --version 2>&1)), python: $(command -v python || echo none)"')"
in_chroot '.venv/bin/python -c "
import sys, torch, torchvision
from torchvision.ops import nms
print(\"venv python\", sys.version.split()[0], \"at\", sys.executable, \"| torch\", torch.__version__,
      \"| torchvision\", torchvision.__version__, \"| nms:\", nms(torch.rand(3, 4).sort(1).values, torch.rand(3), 0.5).tolist())
"' || true

step "command 2: $tests"
t0=$SECONDS
rc2=0; in_chroot "$tests" || rc2=$?
s2=$((SECONDS - t0))
echo "command 2: exit $rc2, $((s2 / 60)) min $((s2 % 60)) s"

step "disk"
du -shx "$root/root/latentexp/.venv" "$root/root/.cache/pip" "$root" 2>/dev/null || true
echo
echo "SUMMARY: command 1 exit $rc1 in ${s1} s, command 2 exit $rc2 in ${s2} s" \
     "(as written: $([ "$as_written" = 1 ] && echo yes || echo no)); venv $(du -sh "$root/root/latentexp/.venv" | cut -f1)," \
     "rootfs $(du -shx "$root" | cut -f1)"
[ "$rc1" = 0 ] && [ "$rc2" = 0 ]
