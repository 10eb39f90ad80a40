#!/usr/bin/env bash
# Builds the image of packaging/docker/Dockerfile with podman, offline from
# any registry: the base is the debootstrap root of the base_root fixture,
# imported as localhost/bookworm-min; the .deb comes from the build_deb
# fixture. Then runs a pod-like pair on a shared volume: an "app" container
# writing log lines and tributary as its sidecar tailing them into a file
# sink. Checks the image's HEALTHCHECK, /health and /ready, that every line
# is delivered exactly once, and that `podman stop` ends with exit code 0
# after draining.
#
# podman runs with its storage under a temporary directory (removed after),
# runc (crun fails on this cgroup setup), explicit ulimits (the defaults
# cannot be raised here) and host networking (bridge networking would edit
# the host's firewall).
TEST_NAME=container
source "$(dirname "$0")/lib.sh"
require_root
command -v podman >/dev/null || skip "podman is not installed (apt-get install podman runc: scripts/bootstrap.sh test does)"
require_tools runc curl
deb=$(the_deb)
[ -s "$BASE_TAR" ] || fail "no base root tarball (packaging.base_root failed?)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tributary-podman.XXXXXX")
cat >"$tmp/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$tmp/storage"
runroot = "$tmp/run"
CONF
cat >"$tmp/containers.conf" <<CONF
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$tmp/events.log"
runtime = "runc"
tmp_dir = "$tmp/libpod-tmp"
CONF
export CONTAINERS_STORAGE_CONF=$tmp/storage.conf CONTAINERS_CONF=$tmp/containers.conf
run_flags=(--runtime runc --network host --ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
cleanup() {
  podman rm -f -t 0 -a >/dev/null 2>&1 || true
  podman system reset -f >/dev/null 2>&1 || true
  remove_tree "$tmp"
}
trap cleanup EXIT

t0=$SECONDS
podman import - localhost/bookworm-min <"$BASE_TAR" >/dev/null || fail "podman import of the base root failed"
mkdir "$tmp/context"
cp "$deb" "$tmp/context/"
podman build --format docker "${run_flags[@]}" --build-arg BASE=localhost/bookworm-min \
  -f "$SOURCE_DIR/packaging/docker/Dockerfile" -t localhost/tributary:test "$tmp/context" >"$tmp/build.log" 2>&1 ||
  { tail -n 40 "$tmp/build.log"; fail "podman build failed"; }
log "image built in $((SECONDS - t0)) s (import + build)"
user=$(podman run --rm "${run_flags[@]}" --entrypoint /usr/bin/id localhost/tributary:test -u)
[ "$user" = 10001 ] || fail "the image runs as uid $user, not the non-root 10001"

# The scenario: the app writes lines into the shared volume, the sidecar
# tails them (file source) into a file sink.
lines=2000
# Below the kernel's ephemeral range (ip_local_port_range, 32768 and up on
# Debian): the tests running beside this one listen on port 0 and connect
# from ephemeral ports, and a port that refuses a connection now may be one
# of theirs by the time the agent binds it (seen in CI: EADDRINUSE).
port=
low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
[ "$low" -gt 11000 ] 2>/dev/null || low=32768
for _ in $(seq 100); do
  p=$((10000 + RANDOM % (low - 10000)))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || fail "no free port found"
mkdir -p "$tmp/shared" "$tmp/out" "$tmp/state"
chown 10001:10001 "$tmp/out" "$tmp/state"
cat >"$tmp/tributary.yaml" <<CONF
data_dir: /var/lib/tributary
api: { address: "127.0.0.1:$port" }
shutdown_timeout_secs: 10
sources:
  app: { type: file, include: ["/var/log/app/*.log"], read_from: beginning }
sinks:
  delivered: { type: file, inputs: [app], path: /out/delivered.log, encoding: { codec: json } }
CONF
chmod 0644 "$tmp/tributary.yaml"

podman run -d --name sidecar "${run_flags[@]}" \
  -v "$tmp/tributary.yaml:/etc/tributary/tributary.yaml:ro" -v "$tmp/shared:/var/log/app:ro" \
  -v "$tmp/out:/out" -v "$tmp/state:/var/lib/tributary" localhost/tributary:test >/dev/null ||
  fail "podman run of the sidecar failed"
healthy() { podman healthcheck run sidecar; }
wait_for 30 healthy || { podman logs sidecar 2>&1 | tail -n 20; fail "the HEALTHCHECK never passed"; }
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")" = 200 ] || fail "/health is not 200"
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ready")" = 200 ]; }
wait_for 20 ready || fail "/ready never answered 200"
log "sidecar is healthy and ready (HEALTHCHECK, /health, /ready)"

# The app writes its lines in bursts while the sidecar tails them.
podman run -d --name app "${run_flags[@]}" -v "$tmp/shared:/var/log/app" localhost/bookworm-min \
  sh -c "i=1; while [ \$i -le $lines ]; do echo \"app line \$i\" >>/var/log/app/app.log; \
         if [ \$((i % 250)) -eq 0 ]; then sleep 0.1; fi; i=\$((i + 1)); done" >/dev/null ||
  fail "podman run of the app failed"
app_done() { [ "$(podman inspect --format '{{.State.Status}}' app)" = exited ]; }
wait_for 60 app_done || fail "the app container did not finish"
[ "$(podman inspect --format '{{.State.ExitCode}}' app)" = 0 ] || fail "the app container failed"
delivered() { [ "$(wc -l <"$tmp/out/delivered.log")" -ge $lines ]; }
wait_for 60 delivered || fail "only $(wc -l <"$tmp/out/delivered.log" 2>/dev/null || echo 0) of $lines lines delivered"

# The reload docs/operations.md gives for Kubernetes (the image has no kill
# program: the shell's), then a config on disk that the agent would refuse:
# the HEALTHCHECK reads only `api`, so the running agent stays healthy.
podman exec sidecar sh -c 'kill -HUP 1' || fail "podman exec sidecar sh -c 'kill -HUP 1' failed"
reloaded() { podman logs sidecar 2>&1 | grep -q 'reloaded:'; }
wait_for 30 reloaded || { podman logs sidecar 2>&1 | tail -n 20; fail "the agent did not reload on sh -c 'kill -HUP 1'"; }
echo "bogus_key: 1" >>"$tmp/tributary.yaml"
podman healthcheck run sidecar >/dev/null ||
  fail "the HEALTHCHECK fails on a config with an error outside api while the agent serves"
log "reloaded with sh -c 'kill -HUP 1'; HEALTHCHECK passes with a bad key in the config on disk"

# Stop: SIGTERM reaches tributary as PID 1; it drains and exits 0.
podman stop -t 30 sidecar >/dev/null || fail "podman stop failed"
code=$(podman inspect --format '{{.State.ExitCode}}' sidecar)
podman logs sidecar >"$tmp/sidecar.log" 2>&1 || true
[ "$code" = 0 ] || { tail -n 20 "$tmp/sidecar.log"; fail "tributary exited with $code after podman stop"; }
grep -q 'received SIGTERM' "$tmp/sidecar.log" ||
  { tail -n 20 "$tmp/sidecar.log"; fail "tributary did not see the SIGTERM"; }
grep -q 'stopped after the shutdown timeout' "$tmp/sidecar.log" && fail "tributary did not drain within its timeout"

# Every line exactly once.
total=$(wc -l <"$tmp/out/delivered.log")
[ "$total" -eq $lines ] || fail "$total lines delivered, expected exactly $lines"
grep -o '"message":"app line [0-9]*"' "$tmp/out/delivered.log" | sed 's/.*app line \([0-9]*\)"/\1/' | sort -n >"$tmp/got"
seq 1 $lines >"$tmp/want"
diff -q "$tmp/want" "$tmp/got" >/dev/null || fail "delivered lines differ from the app's: $(diff "$tmp/want" "$tmp/got" | head -5)"
log "ok: $lines lines delivered exactly once; podman stop → exit 0 after draining; total $((SECONDS - t0)) s"
