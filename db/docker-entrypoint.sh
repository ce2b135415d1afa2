#!/bin/sh
# The official postgres image's contract, in brief, for an image built on Debian's own
# postgresql-15 (see db/Dockerfile for why):
# - arguments starting with "-" are the server's: `postgres -c name=value ...`;
# - first run (an empty $PGDATA): initdb with the superuser $POSTGRES_USER (default
#   postgres) and password $POSTGRES_PASSWORD (required unless
#   POSTGRES_HOST_AUTH_METHOD=trust), the database $POSTGRES_DB, then the *.sql and *.sh
#   files of /docker-entrypoint-initdb.d on a server listening on its socket only, so
#   nothing can connect over TCP before initialisation is complete;
# - started as root, it runs the server as the postgres user; a later run reuses the data.
set -eu

PGDATA="${PGDATA:-/var/lib/postgresql/data}"
export PGDATA

if [ "${1#-}" != "$1" ]; then
	set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
	exec "$@"
fi

if [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chmod 0700 "$PGDATA"
	chown -R postgres:postgres "$PGDATA" /var/run/postgresql
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	user="${POSTGRES_USER:-postgres}"
	auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
		echo "docker-entrypoint: the database is not initialised and POSTGRES_PASSWORD is empty:" >&2
		echo "docker-entrypoint: set it (e.g. in .env: POSTGRES_PASSWORD=...) and start again" >&2
		exit 1
	fi
	pwfile="$(mktemp)"
	printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
	# shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS holds several words on purpose
	initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host="$auth" \
		--encoding=UTF8 --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-} >/dev/null
	rm -f "$pwfile"
	printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"

	# `-c` arguments given to this container apply to the temporary server too (pg_cron's
	# preload and database among them).
	pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' $(printf "'%s' " "$@" | sed "s/^'postgres' //")" start >/dev/null
	db="${POSTGRES_DB:-$user}"
	if [ "$db" != postgres ]; then
		echo 'CREATE DATABASE :"db"' | psql -v ON_ERROR_STOP=1 --username "$user" --no-password --dbname postgres \
			--set db="$db" >/dev/null
	fi
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
			*.sql) echo "docker-entrypoint: running $f"; psql -v ON_ERROR_STOP=1 --username "$user" --no-password --dbname "$db" -f "$f" ;;
			*.sh) echo "docker-entrypoint: running $f"; . "$f" ;;
			*) ;;
		esac
	done
	pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
	echo "docker-entrypoint: database $db initialised; starting the server"
fi

exec "$@"
