#!/usr/bin/env bash
# Build the router's container image for real and check that it works the way Cloud Run runs it:
#
#   1. podman, buildah, debootstrap and runc installed (Debian packages) when missing;
#   2. a Debian bookworm base image with python3 (localhost/bookworm-py), made with debootstrap from
#      the Debian mirror apt uses - no image registry is needed - and kept in podman's storage, so
#      later runs skip this step;
#   3. the Dockerfile built on that base (--build-arg BASE=...), layers cached between runs;
#   4. the image inspected: non-root user, no compiler, no pip or apt caches, tini, a HEALTHCHECK;
#      the router in it runs router/native.py's hot-path modules compiled (router_compiled_modules);
#   5. the container run on a fresh PostgreSQL database (the production queue on Cloud Run) with a
#      config that sends to a loopback fake Meta (tests/fakes/meta.py, which enforces the contract):
#      /healthz, the image's HEALTHCHECK, one purchase accepted and found at the fake, hashed;
#   6. SIGTERM while a delivery is in flight (the fake stalls): exit 0 within 10 s (Cloud Run's
#      window), after a graceful shutdown that hands the delivery back to the queue;
#   7. a second container on the same database delivers it, and exits 0 on SIGTERM too.
#
# Usage: deploy/check-image.sh   (as root, as CI runs it; IMAGE=... names the image to build)
# The container and the database are removed whatever happens; on failure the logs are printed.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/adrouter:check}
BASE_IMAGE=${BASE_IMAGE:-localhost/bookworm-py}
SUITE=bookworm
NAME="adrouter-check-$$"
DB="adrouter_image_check_$$_$(date +%s)"
PG_HOST=127.0.0.1
EXIT_LIMIT_MS=10000
RUN_OPTS=(--runtime runc --network host --ulimit nofile=20000:20000 --ulimit nproc=32768:32768)

WORK=$(mktemp -d /tmp/adrouter-image-check.XXXXXX)
FAKE_PID=""
DB_CREATED=""
CONTAINERS=()
START=$SECONDS

step() { printf '\n==> [%4ss] %s\n' "$((SECONDS - START))" "$*"; }
info() { printf '    %s\n' "$*"; }
die() {
  printf '\ncheck-image: FAIL: %s\n' "$*" >&2
  exit 1
}

cleanup() {
  local status=$?
  set +e
  if [[ $status -ne 0 ]]; then
    for name in "${CONTAINERS[@]}"; do
      echo "---- container logs ($name) ----" >&2
      podman logs "$name" 2>&1 | tail -n 60 >&2
    done
    if [[ -s $WORK/fake.log ]]; then
      echo "---- fake Meta log ----" >&2
      tail -n 40 "$WORK/fake.log" >&2
    fi
  fi
  for name in "${CONTAINERS[@]}"; do podman rm --force --time 0 "$name" >/dev/null 2>&1; done
  if [[ -n $FAKE_PID ]]; then # the fake may hold a stalled request: TERM, then KILL
    kill "$FAKE_PID" 2>/dev/null
    for _ in $(seq 1 30); do kill -0 "$FAKE_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$FAKE_PID" 2>/dev/null
    wait "$FAKE_PID" 2>/dev/null
  fi
  [[ -n $DB_CREATED ]] && dropdb -h "$PG_HOST" -U postgres --if-exists "$DB"
  rm -rf "$WORK"
  if [[ $status -eq 0 ]]; then
    printf '\ncheck-image: PASS in %ss\n' "$((SECONDS - START))"
  else
    printf '\ncheck-image: FAILED (exit %s) after %ss\n' "$status" "$((SECONDS - START))" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The Debian mirror apt already uses (deb822 .sources or one-line .list entries), for debootstrap.
debian_mirror() {
  python3 - "$SUITE" <<'PY'
import glob, re, sys

suite = sys.argv[1]
found = []
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in re.split(r"\n\s*\n", open(path, encoding="utf-8").read()):
        fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.M))
        if suite in fields.get("Suites", "").split() and fields.get("Enabled", "yes") != "no":
            found += fields.get("URIs", "").split()
for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError:
        continue
    for line in lines:
        words = re.sub(r"\[[^]]*\]", "", line.split("#")[0]).split()
        if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
            found.append(words[1])
print(found[0] if found else "http://deb.debian.org/debian")
PY
}

# ---------------------------------------------------------------------------------------------------
step "tools: podman, buildah, debootstrap, runc, curl, PostgreSQL client"
missing=()
for tool in podman buildah debootstrap runc curl; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
command -v createdb >/dev/null 2>&1 || missing+=(postgresql-client)
if [[ ${#missing[@]} -gt 0 ]]; then
  info "installing ${missing[*]} (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >"$WORK/apt.log" 2>&1 || {
    tail -n 30 "$WORK/apt.log" >&2
    die "apt-get install ${missing[*]} failed"
  }
fi
info "$(podman --version), $(buildah --version | cut -d' ' -f1-3), $(runc --version | head -n1)"

if ! pg_isready -h "$PG_HOST" -q 2>/dev/null; then
  info "starting the local PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 1 30); do pg_isready -h "$PG_HOST" -q && break; sleep 1; done
fi
pg_isready -h "$PG_HOST" -q || die "PostgreSQL is not answering on $PG_HOST:5432"

# The fake platform runs from the project's own virtualenv (scripts/test makes it; else make one).
if ! .venv/bin/python -c 'import tests.fakes.meta, destinations.meta.adapter' 2>/dev/null; then
  info "installing the project into .venv for the fake Meta"
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet -e .
fi

# ---------------------------------------------------------------------------------------------------
step "base image $BASE_IMAGE"
if podman image exists "$BASE_IMAGE"; then
  info "cached in podman's storage: skipping debootstrap"
else
  mirror=$(debian_mirror)
  info "debootstrap $SUITE from $mirror (about a minute)"
  rootfs="$WORK/rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 || {
    tail -n 30 "$WORK/debootstrap.log" >&2
    die "debootstrap failed"
  }
  # What Debian's slim images leave out too: downloaded packages, package lists, docs, man pages.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log
  tar -C "$rootfs" -c . | podman import --quiet - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
  info "imported as $BASE_IMAGE"
fi

# ---------------------------------------------------------------------------------------------------
step "build $IMAGE (Dockerfile, BASE=$BASE_IMAGE)"
build=(--runtime runc --network host --format docker --layers --build-arg "BASE=$BASE_IMAGE" --tag "$IMAGE")
# HTTPS to the package index may be intercepted by a local CA: lend the host's CA bundle to the build
# (mounted over the base's own, never written into a layer; Debian's pip reads that file).
ca=""
for candidate in "${PIP_CERT:-}" "${REQUESTS_CA_BUNDLE:-}" "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt; do
  if [[ -n $candidate && -f $candidate ]]; then
    ca=$(readlink -f "$candidate")
    break
  fi
done
[[ -n $ca ]] && build+=(--volume "$ca:/etc/ssl/certs/ca-certificates.crt:ro")
# A package index other than PyPI, when the host's pip is set up with one.
index=${PIP_INDEX_URL:-$(python3 -m pip config get global.index-url 2>/dev/null || true)}
if [[ -n $index ]]; then
  printf '[global]\nindex-url = %s\n' "$index" >"$WORK/pip.conf"
  build+=(--volume "$WORK/pip.conf:/etc/pip.conf:ro")
  info "package index: $index"
fi
previous=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
build_start=$SECONDS
podman build "${build[@]}" . 2>&1 | tee "$WORK/build.log" |
  grep --line-buffered -E '^\[[0-9]+/[0-9]+\] STEP|^--> Using cache|^Successfully tagged' |
  sed -u 's/^/    /' || {
  tail -n 40 "$WORK/build.log" >&2
  die "podman build failed"
}
built=$(podman image inspect --format '{{.Id}}' "$IMAGE")
if [[ -n $previous && $previous != "$built" ]]; then
  podman rmi "$previous" >/dev/null 2>&1 || true # the replaced image; shared layers stay
fi
BUILD_SECONDS=$((SECONDS - build_start))
info "built in ${BUILD_SECONDS}s"

# ---------------------------------------------------------------------------------------------------
step "inspect the image"
size=$(podman image ls --format '{{.Size}}' "$IMAGE" | head -n1)
info "size: $size"
[[ $(podman image inspect --format '{{.Config.User}}' "$IMAGE") == "10001:10001" ]] || die "image USER is not 10001"
[[ $(podman image inspect --format '{{json .Config.Entrypoint}}' "$IMAGE") == *tini* ]] ||
  die "the entrypoint is not tini"
[[ $(podman image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE") == *healthz* ]] ||
  die "no HEALTHCHECK on /healthz (build with --format docker)"
uid=$(podman run --rm "${RUN_OPTS[@]}" "$IMAGE" id -u 2>/dev/null)
[[ $uid != 0 ]] || die "the container runs as root"
info "runs as uid $uid"
inspection=$(podman run --rm "${RUN_OPTS[@]}" --user 0 --entrypoint /bin/sh "$IMAGE" -c '
  bad=""
  for tool in gcc cc g++ c++ make; do
    command -v "$tool" >/dev/null 2>&1 && bad="$bad $tool"
  done
  dpkg-query -W -f="\${Status}\n" build-essential 2>/dev/null | grep -q "install ok installed" && bad="$bad build-essential"
  for path in /opt/venv/bin/pip /root/.cache /app/.cache /tmp/pip-*; do [ -e "$path" ] && bad="$bad $path"; done
  [ -s /etc/pip.conf ] && bad="$bad /etc/pip.conf"
  [ -n "$(ls -A /var/lib/apt/lists 2>/dev/null)" ] && bad="$bad /var/lib/apt/lists"
  [ -n "$(ls /var/cache/apt/archives/*.deb 2>/dev/null)" ] && bad="$bad apt-archives"
  [ -x /usr/bin/tini ] || bad="$bad no-tini"
  [ "$(stat -c %U /app/var)" = router ] || bad="$bad /app/var-not-owned-by-router"
  if [ -n "$bad" ]; then echo "unexpected in the image:$bad"; exit 1; fi
  echo clean
' 2>"$WORK/inspect.log") || {
  printf '%s\n' "$inspection" >&2
  die "the image holds build tools or caches (see above)"
}
[[ $inspection == clean ]] || die "the image inspection said: $inspection"
info "no compiler, no pip, no pip/apt caches; tini present; /app/var owned by the router user"

# ---------------------------------------------------------------------------------------------------
step "fake Meta, PostgreSQL database and config"
FAKE_PORT=$(free_port)
ROUTER_PORT=$(free_port)
PIXEL=1234567890
META_ACCESS_TOKEN="fake-meta-token-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
BACKEND_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
API_VERSION=$(.venv/bin/python -c 'from destinations.meta.adapter import API_VERSION; print(API_VERSION)')
.venv/bin/python -m tests.fakes.meta --host 127.0.0.1 --port "$FAKE_PORT" \
  --token "$META_ACCESS_TOKEN" --pixel "$PIXEL" --version "$API_VERSION" >"$WORK/fake.log" 2>&1 &
FAKE_PID=$!
FAKE="http://127.0.0.1:$FAKE_PORT"
for _ in $(seq 1 100); do curl -fsS "$FAKE/_admin/received" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "$FAKE/_admin/received" >/dev/null || die "the fake Meta did not start"
info "fake Meta (Graph $API_VERSION) on $FAKE"

createdb -h "$PG_HOST" -U postgres "$DB"
DB_CREATED=1
QUEUE_URL="postgresql://postgres@$PG_HOST:5432/$DB"
info "queue database $DB"

# Secrets reach the container as environment variables (as Secret Manager gives them on Cloud Run).
cat >"$WORK/router.yaml" <<YAML
server:
  trusted_proxy_hops: 0
queue:
  url: \${QUEUE_URL}
sources:
  - id: backend
    kind: server
    secret: \${BACKEND_SECRET}
destinations:
  - id: meta_main
    type: meta
    pixel_id: "$PIXEL"
    access_token: \${META_ACCESS_TOKEN}
    base_url: $FAKE
YAML
chmod 0644 "$WORK/router.yaml"

# ---------------------------------------------------------------------------------------------------
ROUTER="http://127.0.0.1:$ROUTER_PORT"

# start_router NAME: run the image detached on the test config; wait until /readyz answers 200.
start_router() {
  local name=$1 started=$SECONDS
  CONTAINERS+=("$name")
  podman run --detach --name "$name" "${RUN_OPTS[@]}" --health-interval disable \
    -e PORT="$ROUTER_PORT" -e HOST=127.0.0.1 -e ROUTER_CONFIG=/etc/router/router.yaml \
    -e QUEUE_URL="$QUEUE_URL" -e BACKEND_SECRET="$BACKEND_SECRET" -e META_ACCESS_TOKEN="$META_ACCESS_TOKEN" \
    --volume "$WORK/router.yaml:/etc/router/router.yaml:ro" \
    "$IMAGE" >"$WORK/run.log" 2>&1 || {
    cat "$WORK/run.log" >&2
    die "podman run failed"
  }
  for _ in $(seq 1 300); do
    curl -fsS "$ROUTER/readyz" >/dev/null 2>&1 && {
      info "$name ready in $((SECONDS - started))s"
      return 0
    }
    [[ $(podman container inspect --format '{{.State.Running}}' "$name") == true ]] ||
      die "$name exited during startup"
    sleep 0.1
  done
  die "$name: /readyz did not answer 200 within 30 s"
}

# stop_router NAME: SIGTERM (as Cloud Run sends it); exit 0 within the limit after a graceful
# shutdown, or fail. Sets STOP_MS.
stop_router() {
  local name=$1 started code
  started=$(date +%s%N)
  podman kill --signal TERM "$name" >/dev/null
  code=$(podman wait "$name")
  STOP_MS=$((($(date +%s%N) - started) / 1000000))
  info "$name: exit code $code ${STOP_MS} ms after SIGTERM"
  [[ $code == 0 ]] || die "$name exited with $code after SIGTERM, not 0"
  ((STOP_MS < EXIT_LIMIT_MS)) || die "$name took ${STOP_MS} ms to exit after SIGTERM"
  podman logs "$name" >"$WORK/$name.log" 2>&1
  grep -q '"router_stopped"' "$WORK/$name.log" || die "$name logged no router_stopped: not graceful"
}

# post_purchase EVENT_ID: POST /v1/events as the backend source; must be 202 accepted.
post_purchase() {
  local answer code body
  answer=$(curl -sS -w '\n%{http_code}' "$ROUTER/v1/events" \
    -H "Authorization: Bearer $BACKEND_SECRET" -H 'Content-Type: application/json' \
    -d '{"event_name": "purchase", "event_id": "'"$1"'", "action_source": "website",
         "page": {"url": "https://shop.example.com/thanks"},
         "user": {"email": " Jane.Doe@Example.com ", "country": "US", "ip": "203.0.113.5",
                  "user_agent": "Mozilla/5.0 (image check)"},
         "properties": {"value": 42.5, "currency": "EUR", "order_id": "1001"}}')
  code=${answer##*$'\n'}
  body=${answer%$'\n'*}
  [[ $code == 202 && $body == *'"accepted"'* ]] || die "POST /v1/events answered $code: $body"
  info "202: $body"
}

# wait_received EVENT_ID: the fake Meta has recorded the event (within 20 s).
wait_received() {
  for _ in $(seq 1 200); do
    [[ $(curl -fsS "$FAKE/_admin/received") == *"\"$1\""* ]] && return 0
    sleep 0.1
  done
  die "event $1 did not reach the fake Meta within 20 s"
}

# waiting_deliveries: pending or in-flight rows in the queue database.
waiting_deliveries() {
  psql -h "$PG_HOST" -U postgres -d "$DB" -tAc "SELECT COUNT(*) FROM deliveries WHERE state IN ('pending', 'inflight')"
}

# ---------------------------------------------------------------------------------------------------
step "run the container (PORT=$ROUTER_PORT, config mounted read-only, PostgreSQL queue)"
start_router "$NAME-a"
health=$(curl -fsS "$ROUTER/healthz") || die "/healthz failed"
[[ $health == *'"ok"'* ]] || die "/healthz answered $health"
info "/healthz: $health"
podman healthcheck run "$NAME-a" >"$WORK/health.log" 2>&1 || {
  cat "$WORK/health.log" >&2
  die "the image's HEALTHCHECK reports unhealthy"
}
info "HEALTHCHECK: healthy"
listed=$(python3 -c "import runpy; print(len(runpy.run_path('router/native.py')['MODULES']))")
compiled=$(curl -fsS "$ROUTER/metrics" | awk '$1 == "router_compiled_modules" {print int($2)}')
[[ $compiled == "$listed" ]] || die "router_compiled_modules is '$compiled', not the $listed router/native.py lists"
info "hot path compiled: $compiled of $listed modules (router_compiled_modules)"

# ---------------------------------------------------------------------------------------------------
step "post a purchase; it must reach the fake Meta once, hashed"
FIRST="image-check-$$-$(date +%s)-1"
post_purchase "$FIRST"
wait_received "$FIRST"
curl -fsS "$FAKE/_admin/received" | python3 -c '
import hashlib, json, sys
event_id = sys.argv[1]
rows = [r for r in json.load(sys.stdin) if r["event_id"] == event_id]
assert len(rows) == 1, f"expected the event once at the fake, got {len(rows)}"
row = rows[0]
text = json.dumps(row)
email = hashlib.sha256(b"jane.doe@example.com").hexdigest()
assert row["event_name"] == "Purchase", row["event_name"]
assert email in text, "the email did not arrive hashed the Meta way"
assert "Jane.Doe" not in text and "jane.doe@" not in text, "a raw email reached the platform"
name = row["event_name"]
print(f"    delivered once: {name} {event_id}, email hashed, no raw email")
' "$FIRST" || die "the event at the fake Meta is not what was sent"
violations=$(curl -fsS "$FAKE/_admin/violations")
[[ $violations == "[]" ]] || die "the fake Meta recorded protocol violations: $violations"
info "the fake recorded no contract violation"

# ---------------------------------------------------------------------------------------------------
step "SIGTERM with a delivery in flight (the fake stalls 20 s): exit 0 within $((EXIT_LIMIT_MS / 1000)) s"
curl -fsS -X POST "$FAKE/_admin/mode" -H 'Content-Type: application/json' \
  -d '{"mode": "timeout", "count": 1, "delay": 20}' >/dev/null || die "cannot set the fake's mode"
SECOND="image-check-$$-$(date +%s)-2"
post_purchase "$SECOND"
sleep 1 # the dispatcher sends at once (linger 50 ms); the fake now holds the request
stop_router "$NAME-a"
INFLIGHT_STOP_MS=$STOP_MS
grep -q '"delivery_released"' "$WORK/$NAME-a.log" ||
  die "no delivery_released log line: the in-flight batch was not handed back"
[[ $(waiting_deliveries) == 1 ]] || die "the queue holds $(waiting_deliveries) waiting deliveries, expected 1"
info "the in-flight delivery was handed back to the queue (1 waiting)"

# ---------------------------------------------------------------------------------------------------
step "a new container on the same database delivers what the first one handed back"
start_router "$NAME-b"
wait_received "$SECOND"
info "$SECOND delivered by $NAME-b"
for _ in $(seq 1 50); do [[ $(waiting_deliveries) == 0 ]] && break; sleep 0.1; done
[[ $(waiting_deliveries) == 0 ]] || die "the queue still holds $(waiting_deliveries) waiting deliveries"
stop_router "$NAME-b"
IDLE_STOP_MS=$STOP_MS
delivered=$(psql -h "$PG_HOST" -U postgres -d "$DB" -tAc \
  "SELECT COALESCE(SUM(count), 0) FROM delivery_counts WHERE destination = 'meta_main' AND outcome = 'delivered'")
[[ $delivered == 2 ]] || die "the queue database counts $delivered deliveries, expected 2"
info "queue database: 0 waiting, 2 delivered"

step "summary"
info "image $IMAGE: $size; build ${BUILD_SECONDS}s"
info "SIGTERM to exit: ${IDLE_STOP_MS} ms idle, ${INFLIGHT_STOP_MS} ms with a delivery in flight"
