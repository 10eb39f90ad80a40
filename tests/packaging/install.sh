#!/usr/bin/env bash
# Installs the .deb into a fresh Debian root (debootstrap minbase, unpacked
# from the base_root fixture) with apt, as a user would, and checks the
# result: the tributary user and its groups, the directories, the conffile;
# `tributary validate /etc/tributary/tributary.yaml` as that user; then a
# reinstall (upgrade path) and `dpkg --purge`.
TEST_NAME=install
source "$(dirname "$0")/lib.sh"
require_root
require_tools chroot tar
deb=$(the_deb)
[ -s "$BASE_TAR" ] || fail "no base root tarball (packaging.base_root failed?)"

tmp=$(mktemp -d "$WORK_DIR/install.XXXXXX")
trap 'remove_tree "$tmp"' EXIT
root=$tmp/root
mkdir "$root"
tar -C "$root" -xf "$BASE_TAR"
copy_apt_sources "$root"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
in_root() { chroot "$root" "$@"; }

# On a host the systemd package has created the systemd-journal group before
# tributary is installed; a minbase root has no systemd, so make the group as
# systemd's sysusers.d would.
in_root groupadd --system systemd-journal

cp "$deb" "$root/tmp/"
start=$SECONDS
in_root sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends /tmp/$(basename "$deb")" \
  >"$tmp/apt.log" 2>&1 || { tail -n 40 "$tmp/apt.log"; fail "apt-get install of the .deb failed"; }
log "installed with apt (dependencies from $(debian_mirror)) in $((SECONDS - start)) s"

# The user, its groups and directories.
groups=$(in_root id -nG tributary) || fail "no tributary user"
for g in tributary systemd-journal adm; do
  grep -qw "$g" <<<"$groups" || fail "tributary is not in group $g (groups: $groups)"
done
[ "$(in_root getent passwd tributary | cut -d: -f7)" = /usr/sbin/nologin ] || fail "tributary has a login shell"
[ "$(in_root stat -c %U:%a /var/lib/tributary)" = tributary:750 ] || fail "/var/lib/tributary: $(in_root stat -c %U:%a /var/lib/tributary)"
# /var/log/tributary: group adm reads the events (setgid: the files get the
# group), not only root and tributary.
[ "$(in_root stat -c %U:%G:%a /var/log/tributary)" = tributary:adm:2750 ] ||
  fail "/var/log/tributary: $(in_root stat -c %U:%G:%a /var/log/tributary), expected tributary:adm:2750"
# Its tmpfiles.d rule (run by systemd-tmpfiles-clean.timer on a host; here by
# this machine's systemd-tmpfiles on the root): a file not written for a
# week is deleted, today's stays; --create puts back owner and mode that an
# older package's LogsDirectory= had changed.
[ -x "$(command -v systemd-tmpfiles)" ] || fail "missing systemd-tmpfiles (package systemd)"
touch -d '8 days ago' "$root/var/log/tributary/events-old.log"
touch "$root/var/log/tributary/events-today.log"
in_root chown tributary:tributary /var/log/tributary
chmod 0750 "$root/var/log/tributary"
systemd-tmpfiles --root="$root" --create --clean tributary.conf >"$tmp/tmpfiles.log" 2>&1 ||
  { cat "$tmp/tmpfiles.log"; fail "systemd-tmpfiles failed on the package's tributary.conf"; }
[ ! -e "$root/var/log/tributary/events-old.log" ] || fail "tmpfiles.d: a file last written 8 days ago was not deleted"
[ -e "$root/var/log/tributary/events-today.log" ] || fail "tmpfiles.d: today's file was deleted"
[ "$(in_root stat -c %U:%G:%a /var/log/tributary)" = tributary:adm:2750 ] ||
  fail "tmpfiles.d --create left /var/log/tributary $(in_root stat -c %U:%G:%a /var/log/tributary)"
rm -f "$root/var/log/tributary/events-today.log"
in_root dpkg-query --control-show tributary conffiles | grep -q '^ */etc/tributary/tributary.yaml' ||
  fail "/etc/tributary/tributary.yaml is not registered as a conffile"
in_root test -x /usr/bin/tributary || fail "/usr/bin/tributary is not installed"
version=$(in_root tributary --version)
log "installed: $version; user tributary in: $groups"

# A real journal file, owned as journald leaves them (root:systemd-journal
# 0640), so the journald source's environment check reads it the way the
# service would on a host.
[ -x /lib/systemd/systemd-journal-remote ] || fail "missing systemd-journal-remote: run scripts/bootstrap.sh test (installs it)"
mid=0123456789abcdef0123456789abcdef
mkdir -p "$root/var/log/journal/$mid"
printf '__REALTIME_TIMESTAMP=1700000000000000\nMESSAGE=hello from the install test\n_HOSTNAME=test\n\n' |
  /lib/systemd/systemd-journal-remote -o "$root/var/log/journal/$mid/system.journal" - 2>/dev/null
in_root chgrp -R systemd-journal /var/log/journal
chmod 2755 "$root/var/log/journal" "$root/var/log/journal/$mid"
chmod 0640 "$root/var/log/journal/$mid/system.journal"

# validate as the service runs it: as user tributary, environment included.
set +e
out=$(in_root runuser -u tributary -- tributary validate /etc/tributary/tributary.yaml 2>&1)
rc=$?
set -e
printf '%s\n' "$out"
check_validate_output "$rc" "$out"
set +e
out=$(in_root tributary validate --no-environment /usr/share/tributary/sidecar.yaml 2>&1)
rc=$?
set -e
check_validate_output "$rc" "$out"

# The Kubernetes example's ConfigMap holds a valid config too.
awk '/^  tributary.yaml: \|/ { on = 1; next } on && /^---/ { exit } on { sub(/^    /, ""); print }' \
  "$SOURCE_DIR/packaging/kubernetes/sidecar.yaml" >"$root/tmp/k8s.yaml"
[ -s "$root/tmp/k8s.yaml" ] || fail "no tributary.yaml in packaging/kubernetes/sidecar.yaml's ConfigMap"
set +e
out=$(in_root env POD_NAME=app POD_NAMESPACE=default tributary validate --no-environment /tmp/k8s.yaml 2>&1)
rc=$?
set -e
check_validate_output "$rc" "$out"

# The commented Kafka and Elasticsearch examples of the default config are
# valid too once uncommented (files only: no broker or cluster is contacted).
sed -E 's/^  # (to_[a-z]+:|  )/  \1/' "$root/etc/tributary/tributary.yaml" >"$root/tmp/examples.yaml"
[ "$(grep -cE '^  to_(kafka|es):' "$root/tmp/examples.yaml")" -eq 2 ] || fail "the Kafka and Elasticsearch examples were not found"
set +e
out=$(in_root env ES_PASSWORD=secret tributary validate --no-environment /tmp/examples.yaml 2>&1)
rc=$?
set -e
check_validate_output "$rc" "$out"

# Reinstall (the upgrade path: postinst with an existing user), keeping an
# edited conffile.
echo "# edited by the admin" >>"$root/etc/tributary/tributary.yaml"
in_root dpkg -i --force-confold "/tmp/$(basename "$deb")" >"$tmp/reinstall.log" 2>&1 ||
  { cat "$tmp/reinstall.log"; fail "reinstall failed"; }
grep -q '^# edited by the admin' "$root/etc/tributary/tributary.yaml" || fail "reinstall replaced the edited config"

# Purge removes the package, its config and state; the user stays (Debian
# keeps system users: files they own may remain).
in_root dpkg --purge tributary >"$tmp/purge.log" 2>&1 || { cat "$tmp/purge.log"; fail "dpkg --purge failed"; }
for p in /usr/bin/tributary /etc/tributary/tributary.yaml /var/lib/tributary /var/log/tributary; do
  [ ! -e "$root$p" ] || fail "$p is left after purge"
done
log "ok: installed, validated, reinstalled, purged"
