# PostgreSQL for docker-compose.store.yml, from the same Debian base as the
# tasksolver image (no image registry is needed: packaging/base-image.sh
# makes the base from a Debian mirror).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/*
COPY packaging/postgres-entry.sh /usr/local/bin/postgres-entry
VOLUME ["/var/lib/postgresql/data"]
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/postgres-entry"]
