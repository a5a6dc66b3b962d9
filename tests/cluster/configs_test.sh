#!/usr/bin/env bash
# Validates every file under deploy/ with the tool that reads it, as far as
# this machine allows (issue #4):
#
#   configs_test.sh BIN_DIR      # BIN_DIR holds the built analyticsd, analytics
#
# - HAProxy: `haproxy -c` on deploy/haproxy/haproxy.cfg (production values,
#   a generated certificate), and the settings the deployment relies on.
# - Caddy: `caddy validate` on Caddyfile (automatic HTTPS) and Caddyfile.local,
#   and `caddy adapt` output: least_conn, active health checks on /ready.
# - nginx: `nginx -t` on nginx.conf (certificate paths pointed at a generated
#   certificate), least_conn and passive max_fails.
# - Traefik (not exercised): the YAML parses and has the /ready health check.
# - systemd: `systemd-analyze verify` of analyticsd@.service (ExecStart
#   pointed at the built binary).
# - Docker (no engine here): the Dockerfile is Debian 12 based, its build
#   stage runs the fresh-machine commands, its runtime stage installs the
#   packages that own every library the built binaries link directly, and
#   every package it names exists in Debian 12; compose.yaml parses, every
#   file it references exists (or is a documented secret), only the balancer
#   publishes ports, the databases sit on an internal network, Redis runs
#   with appendonly yes, worker ids are distinct.
# - deploy/local-cluster: bash -n, usage.
# Each check prints PASS/FAIL; the last line is "N passed, M failed".
set -uo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 BIN_DIR" >&2
  exit 2
fi
BIN_DIR="$(realpath "$1")"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEPLOY="$ROOT/deploy"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/analytics-configs.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

PASSED=0
FAILED=0
FAILURES=()
# check NAME CMD...: runs CMD (output to $TMP/out), records the result.
check() {
  local name="$1"
  shift
  if "$@" >"$TMP/out" 2>&1; then
    echo "PASS $name"
    PASSED=$((PASSED + 1))
  else
    echo "FAIL $name"
    sed 's/^/    /' "$TMP/out" | tail -n 30
    FAILED=$((FAILED + 1))
    FAILURES+=("$name")
  fi
}
need() {
  command -v "$1" >/dev/null 2>&1 || {
    echo "$1 not found: install the Debian package $2 (scripts/setup.sh does)"
    return 1
  }
}
has() {  # has FILE REGEX...: every extended regex matches a line of FILE
  local f="$1" re
  shift
  for re in "$@"; do
    grep -Eq -- "$re" "$f" || {
      echo "$f: no line matches /$re/"
      return 1
    }
  done
}

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$TMP/key.pem" -out "$TMP/cert.pem" >/dev/null 2>&1
cat "$TMP/cert.pem" "$TMP/key.pem" >"$TMP/combined.pem"

# ---------------------------------------------------------------- HAProxy --
haproxy_valid() {
  need haproxy haproxy || return 1
  # Production defaults, except the certificate and the stats socket path.
  ANALYTICS_LB_CERT="$TMP/combined.pem" \
    ANALYTICS_LB_STATS_SOCKET="$TMP/haproxy.sock" \
    haproxy -c -f "$DEPLOY/haproxy/haproxy.cfg" || return 1
  has "$DEPLOY/haproxy/haproxy.cfg" '^\s*balance leastconn' \
    '^\s*option forwardfor' 'uri /ready' 'http-check expect status 200' \
    'ssl crt' '^\s*server worker1 ' '^\s*server worker3 ' \
    '^\s*option redispatch' 'log-format'
  # The access log never records the client address.
  if grep -E '^\s*log-format' "$DEPLOY/haproxy/haproxy.cfg" | grep -q '%ci'; then
    echo "log-format records the client IP (%ci)"
    return 1
  fi
}
haproxy_rejects_garbage() {  # the validator really validates
  need haproxy haproxy || return 1
  printf 'backend b\n  balance nonsense\n' >"$TMP/bad.cfg"
  ! haproxy -c -f "$TMP/bad.cfg"
}
check "haproxy -c deploy/haproxy/haproxy.cfg" haproxy_valid
check "haproxy -c rejects a broken config" haproxy_rejects_garbage

# ------------------------------------------------------------------ Caddy --
caddy_env() {
  env HOME="$TMP/caddyhome" XDG_DATA_HOME="$TMP/caddyhome" \
    XDG_CONFIG_HOME="$TMP/caddyhome" \
    ANALYTICS_LB_CERT_FILE="$TMP/cert.pem" ANALYTICS_LB_KEY_FILE="$TMP/key.pem" \
    ANALYTICS_LB_STATE_DIR="$TMP/caddystate" "$@"
}
caddy_json_has() {  # caddy_json_has JSON_FILE PYTHON_ASSERTIONS
  python3 - "$1" "$2" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
def find(node, key):
    """Every value of `key` anywhere in the JSON tree."""
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                out.append(v)
            out.extend(find(v, key))
    elif isinstance(node, list):
        for v in node:
            out.extend(find(v, key))
    return out
proxies = [h for h in find(cfg, "handle") for h in h
           if isinstance(h, dict) and h.get("handler") == "reverse_proxy"]
assert len(proxies) == 1, f"want one reverse_proxy, got {len(proxies)}"
p = proxies[0]
exec(sys.argv[2])
PY
}
caddy_production() {
  need caddy caddy || return 1
  caddy_env caddy validate --adapter caddyfile \
    --config "$DEPLOY/caddy/Caddyfile" || return 1
  caddy_env caddy adapt --adapter caddyfile \
    --config "$DEPLOY/caddy/Caddyfile" >"$TMP/caddy.json" || return 1
  caddy_json_has "$TMP/caddy.json" '
lb = p["load_balancing"]["selection_policy"]["policy"]
assert lb == "least_conn", lb
assert p["health_checks"]["active"]["uri"] == "/ready", p["health_checks"]
assert len(p["upstreams"]) == 3, p["upstreams"]
# Automatic HTTPS: a named host, no tls directive, automatic_https untouched.
assert "stats.example.com" in json.dumps(cfg), "domain"
assert not find(cfg, "automatic_https"), "automatic_https changed"
assert not find(cfg, "certificates"), "manual certificates in production"
'
}
caddy_local() {
  need caddy caddy || return 1
  caddy_env caddy validate --adapter caddyfile \
    --config "$DEPLOY/caddy/Caddyfile.local" || return 1
  caddy_env caddy adapt --adapter caddyfile \
    --config "$DEPLOY/caddy/Caddyfile.local" >"$TMP/caddy-local.json" || return 1
  caddy_json_has "$TMP/caddy-local.json" '
assert p["load_balancing"]["selection_policy"]["policy"] == "least_conn"
assert p["health_checks"]["active"]["uri"] == "/ready"
assert cfg["admin"]["disabled"] is True, "admin API must be off"
assert find(cfg, "load_files"), "loopback certificate not loaded"
'
}
caddy_rejects_garbage() {
  need caddy caddy || return 1
  printf ':1 {\n  reverse_proxy x {\n    lb_policy nonsense\n  }\n}\n' \
    >"$TMP/Caddyfile.bad"
  ! caddy_env caddy validate --adapter caddyfile --config "$TMP/Caddyfile.bad"
}
check "caddy validate deploy/caddy/Caddyfile (automatic HTTPS)" caddy_production
check "caddy validate deploy/caddy/Caddyfile.local" caddy_local
check "caddy validate rejects a broken config" caddy_rejects_garbage

# ------------------------------------------------------------------ nginx --
nginx_valid() {
  need nginx nginx || return 1
  mkdir -p "$TMP/nginx"
  sed -e "s#/etc/ssl/analytics/fullchain.pem#$TMP/cert.pem#" \
    -e "s#/etc/ssl/analytics/privkey.pem#$TMP/key.pem#" \
    -e "s#/var/log/nginx/#$TMP/nginx/#g" -e "s#/run/nginx.pid#$TMP/nginx/pid#" \
    "$DEPLOY/nginx/nginx.conf" >"$TMP/nginx/nginx.conf"
  nginx -t -c "$TMP/nginx/nginx.conf" || return 1
  has "$DEPLOY/nginx/nginx.conf" '^\s*least_conn;' 'max_fails=' \
    "X-Forwarded-For \\\$proxy_add_x_forwarded_for" 'proxy_next_upstream error timeout;' \
    'no active health checks|NO active health checks|NGINX Plus only'
  if grep -E '^\s*log_format' -A3 "$DEPLOY/nginx/nginx.conf" | grep -q 'remote_addr'; then
    echo "the access log records \$remote_addr"
    return 1
  fi
}
check "nginx -t deploy/nginx/nginx.conf" nginx_valid

# ---------------------------------------------------------------- Traefik --
traefik_yaml() {
  python3 - "$DEPLOY/traefik" <<'PY'
import os, sys, yaml
d = sys.argv[1]
static = yaml.safe_load(open(os.path.join(d, "traefik.yml")))
assert "file" in static["providers"], "file provider"
dyn = yaml.safe_load(open(os.path.join(d, "dynamic", "analytics.yml")))
lb = dyn["http"]["services"]["analyticsd"]["loadBalancer"]
assert lb["healthCheck"]["path"] == "/ready", lb
assert len(lb["servers"]) == 3, lb["servers"]
text = open(os.path.join(d, "traefik.yml")).read()
assert "NOT exercised by the tests" in text, "must say it is not exercised"
PY
}
check "traefik YAML parses (not exercised: no Traefik package)" traefik_yaml

# ---------------------------------------------------------------- systemd --
systemd_unit() {
  need systemd-analyze systemd || return 1
  local unit="$DEPLOY/systemd/analyticsd@.service"
  has "$unit" '^Restart=always' '^EnvironmentFile=/etc/analytics/analyticsd.env' \
    '^Environment=ANALYTICS_WORKER_ID=%i' '^NoNewPrivileges=yes' \
    '^ProtectSystem=strict' '^DynamicUser=yes' || return 1
  mkdir -p "$TMP/systemd"
  sed "s#^ExecStart=/usr/local/bin/analyticsd#ExecStart=$BIN_DIR/analyticsd#" \
    "$unit" >"$TMP/systemd/analyticsd@1.service"
  systemd-analyze verify "$TMP/systemd/analyticsd@1.service" >"$TMP/verify" 2>&1
  local rc=$?
  cat "$TMP/verify"
  # verify exits 0 and says nothing about the unit when it is clean.
  ((rc == 0)) && ! grep -q 'analyticsd@1.service' "$TMP/verify"
}
systemd_env_example() {
  # Every variable the example sets is one analyticsd reads (its --helpfull
  # names each flag's variable), or one of the coordination variables.
  local known v
  known="$("$BIN_DIR/analyticsd" --helpfull 2>&1 | grep -o 'ANALYTICS_[A-Z_]*' | sort -u)"
  known+=$'\nANALYTICS_COORD\nANALYTICS_WORKER_ID'
  while read -r v; do
    grep -qx "$v" <<<"$known" || {
      echo "analyticsd.env.example sets $v, which analyticsd does not read"
      return 1
    }
  done < <(grep -Eo '^#? ?ANALYTICS_[A-Z_]+' "$DEPLOY/systemd/analyticsd.env.example" |
    sed 's/^# \{0,1\}//' | sort -u)
}
check "systemd-analyze verify analyticsd@.service" systemd_unit
check "analyticsd.env.example names only real variables" systemd_env_example

# ----------------------------------------------------------------- Docker --
dockerfile() {
  local df="$DEPLOY/docker/Dockerfile"
  has "$df" '^FROM debian:12 AS build' '^FROM debian:12-slim' \
    'apt-get install -y --no-install-recommends make' \
    'make build BUILD_DIR=' '^ENTRYPOINT \["/usr/local/bin/analyticsd"\]' \
    'HEALTHCHECK .*' 'curl -fsS http://127.0.0.1:8000/ready' || return 1
  # The fresh-machine path (README.md): apt-get install make, then make
  # (which runs scripts/setup.sh and CMake).
  grep -q 'apt-get update && apt-get install -y make' "$ROOT/README.md" || {
    echo "README.md no longer documents the fresh-machine commands"
    return 1
  }
  if ! grep -Eq '^build: configure' "$ROOT/Makefile" ||
    ! grep -Eq '^configure: setup' "$ROOT/Makefile" ||
    ! grep -Eq 'scripts/setup.sh' "$ROOT/Makefile"; then
    echo "Makefile: build no longer runs setup (scripts/setup.sh) first"
    return 1
  fi
  # The runtime packages: those of the runtime stage's apt-get line.
  local runtime
  runtime="$(python3 - "$df" <<'PY'
import re, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
stages = text.split("\nFROM ")
run = [l for l in stages[-1].splitlines() if l.startswith("RUN apt-get")][0]
pkgs = run.split("--no-install-recommends", 1)[1].split("&&")[0].split()
print("\n".join(pkgs))
PY
)" || return 1
  [[ -n "$runtime" ]] || { echo "no runtime packages found"; return 1; }
  # Every package named exists in Debian 12 (this machine is Debian 12).
  local p
  for p in $runtime make; do
    apt-cache show "$p" >/dev/null 2>&1 || {
      echo "Dockerfile installs $p, which is not a Debian 12 package"
      return 1
    }
  done
  # The runtime stage has every package owning a library the binaries link
  # directly (libc, libgcc, libm, zlib are in the base image).
  local bin lib path owner
  for bin in analyticsd analytics; do
    for lib in $(readelf -d "$BIN_DIR/$bin" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p'); do
      [[ "$lib" == ld-linux* ]] && continue  # the loader (libc6)
      # Sanitizer runtimes: only in `make test-asan`/`test-tsan` builds,
      # which the Dockerfile (a Release build) never ships.
      [[ "$lib" =~ ^lib(asan|ubsan|tsan)\.so ]] && continue
      path="$(ldd "$BIN_DIR/$bin" | awk -v l="$lib" '$1 == l {print $3}')"
      [[ -n "$path" ]] || { echo "$bin: $lib not found by ldd"; return 1; }
      path="$(readlink -f "$path")"
      owner="$(dpkg -S "$path" 2>/dev/null || dpkg -S "${path#/usr}" 2>/dev/null)"
      owner="${owner%%:*}"
      case "$owner" in
        libc6 | libgcc-s1 | zlib1g) continue ;;
        "") echo "$bin: no Debian package owns $path"; return 1 ;;
      esac
      grep -qx "$owner" <<<"$runtime" || {
        echo "$bin links $lib ($owner), which the runtime stage does not install"
        return 1
      }
    done
  done
  # Every file the Dockerfile copies from the context exists.
  [[ -f "$DEPLOY/docker/Dockerfile.dockerignore" ]] || {
    echo "no Dockerfile.dockerignore (the context would include build trees)"
    return 1
  }
}
check "Dockerfile: Debian 12, fresh-machine build, runtime libraries" dockerfile

compose() {
  python3 - "$DEPLOY" <<'PY'
import os, re, sys, yaml
deploy = sys.argv[1]
path = os.path.join(deploy, "compose.yaml")
text = open(path).read()
c = yaml.safe_load(text)
s = c["services"]
for name in ("postgres", "redis", "worker1", "worker2", "worker3", "haproxy"):
    assert name in s, f"service {name} missing"
# Redis persists with AOF.
cmd = " ".join(s["redis"]["command"])
assert "--appendonly yes" in cmd, f"redis command {cmd!r}"
# Workers: distinct ids, store on postgres, coordinator on redis, the
# balancer as the only trusted proxy, built from the Dockerfile.
ids = set()
for w in ("worker1", "worker2", "worker3"):
    env = s[w]["environment"]
    ids.add(env["ANALYTICS_WORKER_ID"])
    assert env["ANALYTICS_STORE"].startswith("postgres://"), env
    assert "@postgres:5432/" in env["ANALYTICS_STORE"], env
    assert env["ANALYTICS_COORD"] == "redis://redis:6379/0", env
    lb_ip = s["haproxy"]["networks"]["private"]["ipv4_address"]
    assert env["ANALYTICS_TRUSTED_PROXIES"] == lb_ip, (env, lb_ip)
    assert "ports" not in s[w], f"{w} must not publish ports"
    b = s[w]["build"]
    df = os.path.normpath(os.path.join(deploy, b["context"], b["dockerfile"]))
    assert os.path.isfile(df), f"{w}: no {df}"
    assert s[w]["restart"] == "always"
assert ids == {"1", "2", "3"}, ids
# Only the balancer publishes ports; databases on the internal network only.
for name, svc in s.items():
    if name != "haproxy":
        assert "ports" not in svc, f"{name} publishes ports"
for name in ("postgres", "redis"):
    assert s[name]["networks"] == ["private"], s[name]["networks"]
assert c["networks"]["private"]["internal"] is True
# HAProxy runs the shipped config; its worker addresses are the services.
henv = s["haproxy"]["environment"]
for i in (1, 2, 3):
    assert henv[f"ANALYTICS_WORKER{i}"] == f"worker{i}:8000", henv
# Every bind-mounted file exists, except the documented secrets.
for name, svc in s.items():
    for v in svc.get("volumes", []):
        src = v.split(":")[0]
        if not src.startswith("."):
            assert src in c.get("volumes", {}), f"{name}: volume {src}"
            continue
        full = os.path.normpath(os.path.join(deploy, src))
        if src.startswith("./secrets/"):
            assert src[2:] in text.split("\nname:")[0], \
                f"{src}: not explained in the header"
            continue
        assert os.path.exists(full), f"{name}: {full} does not exist"
# Every ${VAR:?...} the file needs is created by the header's commands.
for var in set(re.findall(r"\$\{(\w+):\?", text)):
    assert f'echo "{var}=' in text, f"{var}: not in the header's deploy/.env"
print("compose.yaml:", ", ".join(s))
PY
}
check "compose.yaml: layout, networks, referenced files" compose

# ---------------------------------------------------------- local-cluster --
local_cluster_script() {
  bash -n "$DEPLOY/local-cluster" || return 1
  [[ -x "$DEPLOY/local-cluster" ]] || { echo "not executable"; return 1; }
  "$DEPLOY/local-cluster" --help 2>"$TMP/usage"
  (($? == 2)) || { echo "--help should exit 2"; return 1; }
  grep -q 'local-cluster up \[--lb haproxy|caddy|nginx\]' "$TMP/usage" || {
    cat "$TMP/usage"
    return 1
  }
  # status of a cluster that was never started: a clear error, exit 1.
  LOCAL_CLUSTER_DIR="$TMP/nocluster" "$DEPLOY/local-cluster" status \
    >"$TMP/st" 2>&1
  (($? == 1)) && grep -q 'no cluster in' "$TMP/st"
}
check "deploy/local-cluster: syntax, usage" local_cluster_script

echo "$PASSED passed, $FAILED failed"
for f in "${FAILURES[@]}"; do echo "  failed: $f"; done
((FAILED == 0))
