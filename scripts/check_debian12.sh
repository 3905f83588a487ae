#!/usr/bin/env bash
# Runs the README's two commands (scripts/test.sh, then scripts/demo.sh) in a fresh Debian 12 chroot,
# as a user's new machine would: what setup.sh must do whenever it changes (new packages, npm).
# Run as root on Debian with debootstrap and access to deb.debian.org and the npm registry.
#   scripts/check_debian12.sh DIR   DIR is the chroot (created when missing, reused otherwise).
# The committed HEAD is cloned into it. CA certificates added to this machine (a proxy's, say) are
# copied in too, so that HTTPS (npm) works there as it does here.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-}
if [ -z "$root" ]; then
  echo "usage: $0 CHROOT_DIR" >&2; exit 2
fi
root=$(realpath -m "$root")

if [ ! -x "$root/bin/bash" ]; then
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian
fi
cp /etc/resolv.conf "$root/etc/"
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
fi
mounted=()
cleanup() { for ((i=${#mounted[@]}-1; i>=0; i--)); do umount "${mounted[i]}" || true; done; }
trap cleanup EXIT
for d in proc sys dev dev/pts; do mount --bind "/$d" "$root/$d"; mounted+=("$root/$d"); done

rm -rf "$root/root/latentkit"
git clone -q . "$root/root/latentkit"
echo "check_debian12: $(git log -1 --oneline)"
in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt /bin/bash -c "$1"
}
# The CA certificates above take effect once setup.sh has installed ca-certificates (first run: after it).
in_root "command -v update-ca-certificates >/dev/null && update-ca-certificates >/dev/null 2>&1 || true"
in_root "cd /root/latentkit && (bash scripts/setup.sh || (update-ca-certificates >/dev/null 2>&1 && bash scripts/setup.sh))"
in_root "cd /root/latentkit && bash scripts/test.sh"
in_root "cd /root/latentkit && bash scripts/demo.sh"
echo "check_debian12: both commands passed"
