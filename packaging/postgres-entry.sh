#!/bin/sh
# Starts PostgreSQL 15 as the postgres user, making its cluster on the
# first start: a role and a database named tasksolver, reachable from the
# compose network only (no port is published), password-less.
set -eu
bin=/usr/lib/postgresql/15/bin
data=/var/lib/postgresql/data
as_pg="setpriv --reuid=postgres --regid=postgres --init-groups"
if [ ! -s "$data/PG_VERSION" ]; then
    mkdir -p "$data" /run/postgresql
    chown postgres:postgres "$data" /run/postgresql
    chmod 0700 "$data"
    $as_pg "$bin/initdb" -D "$data" -U postgres -A peer --auth-host=trust >/dev/null
    # The nodes, from the container's own networks (samenet) only.
    echo "host tasksolver tasksolver samenet trust" >>"$data/pg_hba.conf"
    # Local sockets only while the role and database are made.
    $as_pg "$bin/pg_ctl" -D "$data" -w -o "-c listen_addresses=''" start >/dev/null
    $as_pg "$bin/psql" -q -h /run/postgresql -U postgres -c "CREATE ROLE tasksolver LOGIN" \
        -c "CREATE DATABASE tasksolver OWNER tasksolver"
    $as_pg "$bin/pg_ctl" -D "$data" -w stop >/dev/null
fi
mkdir -p /run/postgresql
chown postgres:postgres /run/postgresql
# PID 1 is the server itself: docker stop's SIGTERM is its smart shutdown.
exec $as_pg "$bin/postgres" -D "$data" -c listen_addresses='*'
