#!/bin/sh
# Minimal equivalent of the official redis image's entrypoint.
set -e
# `docker run redis:7-bookworm --appendonly yes` or a config file first: redis-server with those arguments
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi
# started as root: the data folder becomes redis's, and redis-server runs as redis
if [ "$1" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
  find . \! -user redis -exec chown redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
# what redis-server writes (its RDB and AOF files) is the data's owner's only
um="$(umask)"
if [ "$um" = '0022' ]; then
  umask 0077
fi
exec "$@"
