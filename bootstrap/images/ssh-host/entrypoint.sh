#!/bin/bash
# Entrypoint of a test-fleet SSH host (bootstrap/images/ssh-host). Environment:
#   SMART_DEPLOY_SSH_LISTEN        address sshd listens on (required; port 2222 unless SMART_DEPLOY_SSH_PORT)
#   SMART_DEPLOY_AUTHORIZED_KEY    public key allowed to log in as `deploy` (or a file mounted at
#                                  /run/smart-deploy/authorized_keys)
#   SMART_DEPLOY_HOST_ROLE         app | db | lb (db: start PostgreSQL 15 before sshd)
#   SMART_DEPLOY_PG_USER / SMART_DEPLOY_PG_PASSWORD   the database host's superuser login (db)
#   SMART_DEPLOY_PG_LISTEN         comma-separated listen_addresses (db; default 127.0.0.1)
#   SMART_DEPLOY_PG_PORT           default 5433
# A mounted /var/run/docker.sock is made usable by `deploy` (added to the socket's group).
set -euo pipefail

die() { echo "smart-deploy-host: $*" >&2; exit 1; }
listen="${SMART_DEPLOY_SSH_LISTEN:?SMART_DEPLOY_SSH_LISTEN (the address sshd listens on) is required}"
port="${SMART_DEPLOY_SSH_PORT:-2222}"

# host key: one ed25519 key, made at first start (each fleet has its own; the test reads it with docker exec)
[[ -s /etc/ssh/ssh_host_ed25519_key ]] || ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key

# the authorized key of `deploy`
key="${SMART_DEPLOY_AUTHORIZED_KEY:-}"
[[ -z "$key" && -r /run/smart-deploy/authorized_keys ]] && key="$(cat /run/smart-deploy/authorized_keys)"
[[ -n "$key" ]] || die "no authorized key (SMART_DEPLOY_AUTHORIZED_KEY or /run/smart-deploy/authorized_keys)"
install -d -m 0700 -o deploy -g deploy /home/deploy/.ssh
printf '%s\n' "$key" >/home/deploy/.ssh/authorized_keys
chown deploy:deploy /home/deploy/.ssh/authorized_keys
chmod 0600 /home/deploy/.ssh/authorized_keys

# the machine's Docker engine, when its socket is mounted: `deploy` joins the socket's group (by gid)
if [[ -S /var/run/docker.sock ]]; then
  gid="$(stat -c %g /var/run/docker.sock)"
  group="$(getent group "$gid" | cut -d: -f1 || true)"
  if [[ -z "$group" ]]; then
    group=docker-host
    groupadd --gid "$gid" "$group"
  fi
  usermod -aG "$group" deploy
fi

# the database host: a PostgreSQL 15 cluster of its own (Debian's pg_createcluster), scram-sha-256 over TCP
if [[ "${SMART_DEPLOY_HOST_ROLE:-app}" == db ]]; then
  pg_user="${SMART_DEPLOY_PG_USER:?SMART_DEPLOY_PG_USER is required on the db host}"
  pg_password="${SMART_DEPLOY_PG_PASSWORD:?SMART_DEPLOY_PG_PASSWORD is required on the db host}"
  pg_port="${SMART_DEPLOY_PG_PORT:-5433}"
  pg_listen="${SMART_DEPLOY_PG_LISTEN:-127.0.0.1}"
  if [[ ! -d /etc/postgresql/15/main ]]; then
    pg_createcluster --port "$pg_port" -o "listen_addresses=$pg_listen" -o "password_encryption=scram-sha-256" \
      15 main -- --auth-local=peer --auth-host=scram-sha-256 >/dev/null
    # TCP logins from the loopback and the private ranges Docker's networks use (containers come from them)
    for net in 127.0.0.0/8 10.0.0.0/8 172.16.0.0/12 192.168.0.0/16; do
      printf 'host all all %s scram-sha-256\n' "$net" >>/etc/postgresql/15/main/pg_hba.conf
    done
  fi
  pg_ctlcluster 15 main start
  # the superuser login; name and password reach psql through its environment (\getenv), never argv
  printf '%s\n' '\getenv u PGU' '\getenv p PGP' \
    "SELECT format('CREATE ROLE %I LOGIN SUPERUSER', :'u') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'u') \\gexec" \
    "SELECT format('ALTER ROLE %I WITH LOGIN SUPERUSER PASSWORD %L', :'u', :'p') \\gexec" \
    | PGU="$pg_user" PGP="$pg_password" runuser --preserve-environment -u postgres -- psql -XqAt -v ON_ERROR_STOP=1 -p "$pg_port" >/dev/null \
    || die "could not create the database superuser"
fi

exec /usr/sbin/sshd -D -e -o "ListenAddress=$listen:$port"
