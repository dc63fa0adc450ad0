#!/usr/bin/env bash
# smart-deploy set-up: everything a fresh machine needs before a playbook can run.
#
#   scripts/setup.sh            venv + Python packages + collections + Docker engine + base images (+ the fleet tests' SSH host image)
#   scripts/setup.sh --no-docker   only the venv, packages and collections (lint, unit tests)
#
# Idempotent: each step checks first and does nothing when its work is already done.
# It stops BEFORE changing anything when a requirement can neither be found nor installed
# (no Docker engine and not root on Debian, no python3 with venv).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SMART_DEPLOY_VENV:-$ROOT/.venv}"
PYTHON="${SMART_DEPLOY_PYTHON:-python3}"
DOCKERD_LOG="${SMART_DEPLOY_DOCKERD_LOG:-/var/log/smart-deploy-dockerd.log}"
BASE_IMAGE="smart-deploy/debian-base:bookworm"
# name the Dockerfiles use -> folder under bootstrap/images that builds a stand-in offline
declare -A STANDIN=(
  ["python:3.11-slim-bookworm"]="python"
  ["postgres:15-bookworm"]="postgres"
  ["nginx:stable-bookworm"]="nginx"
  ["redis:7-bookworm"]="redis"
)
# apt-get without questions or restart prompts
export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 NEEDRESTART_MODE=l
WANT_DOCKER=1
[[ "${1:-}" == "--no-docker" ]] && WANT_DOCKER=0

step_no=0
step() { step_no=$((step_no + 1)); printf '\033[1m==> [setup %d] %s\033[0m\n' "$step_no" "$*"; }
info() { printf '    %s\n' "$*"; }
die() { printf '\033[31mERROR: %s\033[0m\n' "$*" >&2; exit 1; }

is_root() { [[ "$(id -u)" == "0" ]]; }
is_debian() { [[ -r /etc/debian_version ]] && command -v apt-get >/dev/null 2>&1; }
docker_ok() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }
# apt_install PKG...: install Debian packages; waits for another apt's lock, finishes a dpkg run that
# was interrupted earlier (a killed install leaves "dpkg was interrupted" and every later install
# fails), refreshes the package lists once if the first try fails, and prints apt's own log on failure.
apt_install() {
  local log rc=0
  log="$(mktemp /tmp/smart-deploy-apt.XXXXXX)"
  local apt=(apt-get -o DPkg::Lock::Timeout=300 -y -qq)
  if dpkg --audit 2>/dev/null | grep -q .; then
    info "finishing an interrupted dpkg run (dpkg --configure -a)"
    dpkg --configure -a >>"$log" 2>&1 || true
  fi
  "${apt[@]}" install "$@" >>"$log" 2>&1 \
    || { "${apt[@]}" update >>"$log" 2>&1 && "${apt[@]}" install "$@" >>"$log" 2>&1; } \
    || rc=$?
  ((rc == 0)) || tail -n 30 "$log" >&2
  rm -f "$log"
  return "$rc"
}

# ---------------------------------------------------------------------------------------------
# 0. Decide what is possible before touching anything.
# ---------------------------------------------------------------------------------------------
step "checking prerequisites"
if [[ $WANT_DOCKER == 1 ]] && ! docker_ok; then
  if ! is_root || ! is_debian; then
    die "No Docker engine answers ('docker info' failed) and this machine cannot install one by itself
       (it needs root on Debian/Ubuntu). Fix: install Docker Engine (https://docs.docker.com/engine/install/),
       start it, and make sure your user can run 'docker info' (add it to the 'docker' group), then run again."
  fi
  info "no Docker engine answers: it will be installed/started (root on Debian)"
fi
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found. Install Python 3.11+ (Debian: apt-get install python3 python3-venv)."
"$PYTHON" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
  || die "$PYTHON must be Python >= 3.11 with the venv module (Debian: apt-get install python3-venv)."
command -v git >/dev/null 2>&1 || die "git not found: smart-deploy names releases after the app's git sha. Install git."
info "ok"

# ---------------------------------------------------------------------------------------------
# 1. Python virtual environment and packages (pinned ranges in requirements.txt).
# ---------------------------------------------------------------------------------------------
step "Python venv ($VENV)"
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
  info "created"
else
  info "present"
fi
step "Python packages (requirements.txt)"
stamp="$VENV/.smart-deploy-requirements.sha256"
want="$(sha256sum "$ROOT/requirements.txt" | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  pip_log="$VENV/.pip-install.log"
  { "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip \
      && "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/requirements.txt"; } >"$pip_log" 2>&1 \
    || { tail -n 30 "$pip_log" >&2; die "installing the Python packages failed (log: $pip_log)"; }
  echo "$want" >"$stamp"
  info "installed"
else
  info "up to date"
fi

# ---------------------------------------------------------------------------------------------
# 2. Ansible collections: the 'ansible' package bundles them; Galaxy (requirements.yml) only if missing.
# ---------------------------------------------------------------------------------------------
step "Ansible collections (community.docker, community.postgresql, community.general, community.crypto, ansible.posix)"
missing=()
for c in community.docker community.postgresql community.general community.crypto ansible.posix; do
  "$VENV/bin/ansible-galaxy" collection list "$c" >/dev/null 2>&1 || missing+=("$c")
done
if ((${#missing[@]})); then
  info "missing: ${missing[*]}; installing requirements.yml from Galaxy"
  "$VENV/bin/ansible-galaxy" collection install -r "$ROOT/requirements.yml" \
    || die "could not install collections ${missing[*]} (Galaxy unreachable?)."
else
  info "bundled with the ansible package"
fi

[[ $WANT_DOCKER == 1 ]] || exit 0

# ---------------------------------------------------------------------------------------------
# 3. Docker engine.
# ---------------------------------------------------------------------------------------------
step "Docker engine"
if docker_ok; then
  info "running (server $(docker version --format '{{.Server.Version}}' 2>/dev/null))"
else
  if ! command -v dockerd >/dev/null 2>&1; then
    info "installing docker.io from Debian"
    apt_install docker.io || die "could not install docker.io (apt's log above)"
  fi
  if ! docker_ok; then
    info "starting dockerd (log: $DOCKERD_LOG)"
    if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
      systemctl start docker || true
    fi
    if ! docker_ok; then
      nohup dockerd >"$DOCKERD_LOG" 2>&1 &
    fi
    for _ in $(seq 1 60); do docker_ok && break; sleep 1; done
    docker_ok || die "dockerd did not answer within 60 s; see $DOCKERD_LOG"
  fi
  info "running (server $(docker version --format '{{.Server.Version}}'))"
fi

# ---------------------------------------------------------------------------------------------
# 4. Base images the Dockerfiles name. Pulled where a registry answers; otherwise built here from
#    Debian packages (debootstrap + docker import), tagged with the same names.
# ---------------------------------------------------------------------------------------------
step "base images (${!STANDIN[*]}, smart-deploy/ssh-host:bookworm)"
debian_mirror() {
  if [[ -n "${SMART_DEPLOY_DEBIAN_MIRROR:-}" ]]; then echo "$SMART_DEPLOY_DEBIAN_MIRROR"; return; fi
  local m
  m="$(grep -rhoE '(https?://[^ ]+/debian)/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
        /etc/apt/sources.list.d/*.list 2>/dev/null | grep -v security | head -n1 | tr -d ' ' || true)"
  echo "${m:-http://deb.debian.org/debian}"
}
# ensure_debian_base [SUITE]: smart-deploy/debian-base:SUITE (default bookworm), a minimal Debian of that release
# with its python3, from the machine's Debian mirror
ensure_debian_base() {
  local suite="${1:-bookworm}"
  local image="smart-deploy/debian-base:$suite"
  docker image inspect "$image" >/dev/null 2>&1 && return 0
  is_root && is_debian || die "cannot build $image here (needs root on Debian for debootstrap)."
  command -v debootstrap >/dev/null 2>&1 || {
    info "installing debootstrap"
    apt_install debootstrap || die "could not install debootstrap (apt's log above)"
  }
  local rootfs mirror
  rootfs="$(mktemp -d /tmp/smart-deploy-rootfs.XXXXXX)"
  mirror="$(debian_mirror)"
  info "debootstrap $suite from $mirror (about a minute)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates "$suite" "$rootfs" "$mirror" \
    >"$rootfs.log" 2>&1 || { tail -n 20 "$rootfs.log"; die "debootstrap of $suite failed (log above)"; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
  rm -rf "$rootfs" "$rootfs.log"
  info "imported $image"
}
# standin_hash FOLDER: the sha256 of the files of bootstrap/images/FOLDER (names and contents), which a stand-in
# built from it carries as its label smart-deploy.standin
standin_hash() {
  (cd "$ROOT/bootstrap/images/$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
}
# standin_is_stale NAME SUITE HASH: NAME is a stand-in built here from other files than bootstrap/images' of today:
# its label says another hash, or it has no label and sits on smart-deploy/debian-base:SUITE (a stand-in built
# before the label). An image pulled (or loaded) under that name has neither: it is kept.
standin_is_stale() {
  local name="$1" suite="$2" want="$3" label first base
  label="$(docker image inspect -f '{{index .Config.Labels "smart-deploy.standin"}}' "$name" 2>/dev/null || true)"
  if [[ -n "$label" ]]; then
    [[ "$label" != "$want" ]]
    return
  fi
  first="$(docker image inspect -f '{{index .RootFS.Layers 0}}' "$name" 2>/dev/null || true)"
  base="$(docker image inspect -f '{{index .RootFS.Layers 0}}' "smart-deploy/debian-base:$suite" 2>/dev/null || true)"
  [[ -n "$base" && "$first" == "$base" ]]
}
# ensure_standin NAME FOLDER [SUITE]: the image NAME, present (and, if a stand-in, built from today's
# bootstrap/images/FOLDER), pulled, or built from bootstrap/images/FOLDER on smart-deploy/debian-base:SUITE
ensure_standin() {
  local name="$1" folder="$2" suite="${3:-bookworm}" log want
  want="$(standin_hash "$folder")"
  if docker image inspect "$name" >/dev/null 2>&1; then
    if ! standin_is_stale "$name" "$suite" "$want"; then
      info "$name: present"
      return 0
    fi
    info "$name: a stand-in built from an older bootstrap/images/$folder: building it again"
  fi
  if [[ "${SMART_DEPLOY_TRY_PULL:-1}" == "1" ]] && timeout 60 docker pull -q "$name" >/dev/null 2>&1; then
    info "$name: pulled"
    return 0
  fi
  ensure_debian_base "$suite"
  info "$name: building a stand-in from Debian $suite packages (no registry reachable)"
  log="$(mktemp)"
  docker build -q --build-arg "BASE=smart-deploy/debian-base:$suite" --label "smart-deploy.standin=$want" -t "$name" \
    "$ROOT/bootstrap/images/$folder" >"$log" 2>&1 \
    || { cat "$log" >&2; die "building the stand-in for $name failed"; }
  rm -f "$log"
}
for name in "${!STANDIN[@]}"; do
  ensure_standin "$name" "${STANDIN[$name]}"
done
# A current Python for apps on Django 6 (which needs Python 3.12+): python:3.13-slim-trixie, the same stand-in
# built on Debian trixie, whose python3 is 3.13 (README "Offline machines": FROM python:3.13-slim-trixie and
# python_version "3.13" in the Django component). Images named here -> bootstrap/images folder.
declare -A STANDIN_TRIXIE=(
  ["python:3.13-slim-trixie"]="python"
)
for name in "${!STANDIN_TRIXIE[@]}"; do
  ensure_standin "$name" "${STANDIN_TRIXIE[$name]}" trixie
done
# The SSH targets of the fleet tests (tests/integration/fleet.py): one image FROM the python base above, with
# Debian's openssh-server, docker CLI, haproxy and postgresql-15. Docker's build cache makes this a no-op
# (about a second) when nothing in bootstrap/images/ssh-host changed.
SSH_HOST_IMAGE="smart-deploy/ssh-host:bookworm"
had="$(docker image inspect -f '{{.Id}}' "$SSH_HOST_IMAGE" 2>/dev/null || true)"
log="$(mktemp)"
docker build -q -t "$SSH_HOST_IMAGE" "$ROOT/bootstrap/images/ssh-host" >"$log" 2>&1 \
  || { cat "$log" >&2; die "building $SSH_HOST_IMAGE (the fleet tests' SSH hosts) failed"; }
rm -f "$log"
if [[ "$(docker image inspect -f '{{.Id}}' "$SSH_HOST_IMAGE")" == "$had" ]]; then
  info "$SSH_HOST_IMAGE: present"
else
  info "$SSH_HOST_IMAGE: built"
fi
step "ready"
