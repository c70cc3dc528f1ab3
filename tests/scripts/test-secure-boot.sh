# iso/mkhdd.sh with SECURE_BOOT=1 signs Limine and pins the config and the
# kernel by hash: every missing piece (a bad SECURE_BOOT value, the key or
# certificate, sbsigntool, the release's `limine` tool) must stop it at
# once with the one thing to do, before it writes an image.
source "$(dirname "$0")/lib.sh"

key=$scratch/key.pem cert=$scratch/cert.pem kernel=$scratch/kernel
touch "$key" "$cert" "$kernel"
img=$scratch/out.hdd
# A Limine release without its host tool, which enroll-config needs.
release=$scratch/limine
mkdir -p "$release"
touch "$release"/{BOOTX64.EFI,limine-uefi-cd.bin,limine-bios-cd.bin,limine-bios.sys}
# A PATH holding only what mkhdd.sh uses before its checks, so that a
# missing sbsign is missing whatever the machine has installed.
bare=$scratch/bare
mkdir -p "$bare"
for tool in dirname sbverify b2sum; do
    real=$(command -v "$tool") && ln -s "$real" "$bare/$tool"
done

refused "SECURE_BOOT=yes" "SECURE_BOOT=yes: give SECURE_BOOT=1 (or leave it unset)" \
    env SECURE_BOOT=yes iso/mkhdd.sh "$kernel" "$img"
refused "SECURE_BOOT=1 without a key" "SECURE_BOOT=1 needs SB_KEY=<key.pem> SB_CERT=<cert.pem>" \
    env SECURE_BOOT=1 SB_CERT="$cert" iso/mkhdd.sh "$kernel" "$img"
refused "SECURE_BOOT=1 without a certificate" "SECURE_BOOT=1 needs SB_KEY=<key.pem> SB_CERT=<cert.pem>" \
    env SECURE_BOOT=1 SB_KEY="$key" iso/mkhdd.sh "$kernel" "$img"
refused "SB_KEY=missing" "SB_KEY=/nonexistent/key.pem: no such readable file" \
    env SECURE_BOOT=1 SB_KEY=/nonexistent/key.pem SB_CERT="$cert" iso/mkhdd.sh "$kernel" "$img"
refused "SB_CERT=missing" "SB_CERT=/nonexistent/cert.pem: no such readable file" \
    env SECURE_BOOT=1 SB_KEY="$key" SB_CERT=/nonexistent/cert.pem iso/mkhdd.sh "$kernel" "$img"
refused "SECURE_BOOT=1 without sbsign" "SECURE_BOOT=1 needs \`sbsign\` (Debian and Ubuntu: apt-get install sbsigntool" \
    env PATH="$bare" SECURE_BOOT=1 SB_KEY="$key" SB_CERT="$cert" /bin/bash iso/mkhdd.sh "$kernel" "$img"
if command -v sbsign >/dev/null && command -v sbverify >/dev/null && command -v b2sum >/dev/null; then
    refused "SECURE_BOOT=1 without the release's limine tool" \
        "SECURE_BOOT=1 needs the \`limine\` host utility of the release in $release" \
        env PATH="$fakes:/usr/bin:/bin" LIMINE_DIR="$release" SECURE_BOOT=1 SB_KEY="$key" \
        SB_CERT="$cert" iso/mkhdd.sh "$kernel" "$img"
else
    echo "SKIP SECURE_BOOT=1 without the release's limine tool: sbsigntool is not installed"
fi
if [ -e "$img" ]; then
    name="no image written" fail "a refused run left $img behind"
fi
finish
