#!/bin/bash
# Builds a Debian 12 Vagrant box for the libvirt provider from this machine's own apt mirrors, with
# what nslab's labs need baked in (the self-test's VMs have no internet): vagrant/box/build.sh OUT.box
set -euo pipefail
out=$(realpath -m "${1:?usage: build.sh OUT.box}")

# Baked into the image: what boots and lets Vagrant in, libstdc++6 for the node binary the self-test
# ships, rsync for the synced folder, and vagrant/packages.txt, what provision.sh would otherwise fetch.
mapfile -t lab_packages < <(grep -v '^#' "$(dirname "$0")/../packages.txt")
packages=(
  linux-image-cloud-amd64 systemd-sysv udev dbus openssh-server sudo grub-pc-bin grub2-common initramfs-tools
  libstdc++6 rsync ca-certificates "${lab_packages[@]}"
)

key=$(ls /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub 2>/dev/null | head -n1)
[ -n "$key" ] || { echo "build.sh: Vagrant's insecure public key not found (apt-get install vagrant)" >&2; exit 1; }

# The mirrors this machine's apt already uses (deb822 .sources or one-line sources.list), so no host
# name is written here: in CI that is whatever mirror the machine was given.
mapfile -t uris < <({ grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
                      grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'; } | awk '!seen[$0]++')
main="" security=""
for u in "${uris[@]}"; do
  case $u in *security*) security=${security:-$u} ;; *) main=${main:-$u} ;; esac
done
[ -n "$main" ] || { echo "build.sh: no Debian mirror in /etc/apt/sources.list*" >&2; exit 1; }
security=${security:-${main%/debian}/debian-security}

work=$(mktemp -d /var/tmp/nslab-box.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root

# A snapshot mirror's Release files are past their Valid-Until: accept them. mmdebstrap mounts /proc,
# /sys and /dev in the chroot; a private mount namespace guarantees none outlives a failed build.
unshare --mount --propagation private \
mmdebstrap --quiet --variant=apt --aptopt='Acquire::Check-Valid-Until "false"' \
  --include="$(IFS=,; echo "${packages[*]}")" \
  --customize-hook='chroot "$1" useradd -m -s /bin/bash -U vagrant' \
  --customize-hook='echo vagrant:vagrant | chroot "$1" chpasswd' \
  --customize-hook="install -d -m700 \"\$1/home/vagrant/.ssh\" && install -m600 $key \"\$1/home/vagrant/.ssh/authorized_keys\" && chroot \"\$1\" chown -R vagrant:vagrant /home/vagrant/.ssh" \
  --customize-hook='echo "vagrant ALL=(ALL) NOPASSWD:ALL" > "$1/etc/sudoers.d/vagrant"; chmod 440 "$1/etc/sudoers.d/vagrant"' \
  --customize-hook='printf "[Match]\nName=eth0\n\n[Network]\nDHCP=yes\n" > "$1/etc/systemd/network/10-eth0.network"; chroot "$1" systemctl enable systemd-networkd' \
  --customize-hook='echo debian12 > "$1/etc/hostname"; printf "127.0.0.1 localhost\n127.0.1.1 debian12\n" > "$1/etc/hosts"' \
  --customize-hook='rm -f "$1"/var/cache/apt/*.bin; rm -rf "$1"/var/lib/apt/lists/*' \
  bookworm "$work/rootfs.tar" \
  "deb $main bookworm main" "deb $main bookworm-updates main" "deb $security bookworm-security main"

mkdir "$root"
tar -C "$root" --numeric-owner --xattrs --xattrs-include='*' -xpf "$work/rootfs.tar"
rm "$work/rootfs.tar"
uuid=$(cat /proc/sys/kernel/random/uuid)
echo "UUID=$uuid / ext4 errors=remount-ro 0 1" > "$root/etc/fstab"
# GRUB by hand: this kernel may lack MSDOS partition support (no loop partitions for grub-install),
# so boot.img goes into the MBR, core.img into the gap before the first partition at 1 MiB.
mkdir -p "$root/boot/grub/i386-pc"
cp "$root"/usr/lib/grub/i386-pc/*.mod "$root"/usr/lib/grub/i386-pc/*.lst "$root/boot/grub/i386-pc/"
cat > "$root/boot/grub/grub.cfg" <<EOF
set timeout=0
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
menuentry debian12 {
  search --no-floppy --fs-uuid --set=root $uuid
  linux /vmlinuz root=UUID=$uuid ro console=tty0 console=ttyS0,115200n8 net.ifnames=0 biosdevname=0
  initrd /initrd.img
}
EOF
chroot "$root" grub-mkimage -O i386-pc -o /tmp/core.img -p '(hd0,msdos1)/boot/grub' \
  biosdisk part_msdos ext2 search search_fs_uuid normal linux serial terminal configfile echo
mv "$root/tmp/core.img" "$work/core.img"
cp "$root/usr/lib/grub/i386-pc/boot.img" "$work/boot.img"
truncate -s 2047M "$work/part.ext4"
mkfs.ext4 -q -U "$uuid" -L root -d "$root" "$work/part.ext4"
rm -rf "$root"
truncate -s 2G "$work/disk.raw"
echo 'start=2048, type=83, bootable' | sfdisk -q "$work/disk.raw"
dd if="$work/boot.img" of="$work/disk.raw" bs=440 count=1 conv=notrunc status=none
dd if="$work/core.img" of="$work/disk.raw" bs=512 seek=1 conv=notrunc status=none
dd if="$work/part.ext4" of="$work/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
rm "$work/part.ext4"
mkdir "$work/box"
qemu-img convert -c -O qcow2 "$work/disk.raw" "$work/box/box.img"
rm "$work/disk.raw"
echo '{"provider": "libvirt", "format": "qcow2", "virtual_size": 2}' > "$work/box/metadata.json"
printf 'Vagrant.configure("2") do |config|\n  config.vm.provider :libvirt do |l|\n    l.driver = "qemu"\n  end\nend\n' > "$work/box/Vagrantfile"
mkdir -p "$(dirname "$out")"
tar -C "$work/box" -cf "$out.tmp" metadata.json Vagrantfile box.img
mv "$out.tmp" "$out"
echo "box: $out ($(du -h "$out" | cut -f1))"
