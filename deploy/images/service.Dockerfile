# syntax=docker/dockerfile:1
#
# One image per EasyJournal service (users, and every later service the same way):
#
#   docker build -f deploy/images/service.Dockerfile --build-arg SERVICE=users \
#       -t easyjournal/users:dev .
#
# Build context: the repository root (see .dockerignore). Stage "build" compiles with the -dev
# packages through the project's Makefile (make build/bin/ej-$SERVICE, protobuf code generated
# by protoc-c); stage "runtime" carries only the shared libraries, the stripped binary and curl
# for the HEALTHCHECK. Everything runs in exec form: nothing needs a shell at run time.
#
# Settings come from the environment (see README.md): EJ_DB_URL (required), EJ_NATS_URL,
# EJ_WORKERS, EJ_ADMIN_ADDR, EJ_LOG_LEVEL, EJ_RELAY_POLL_MS, and EJ_GRANT_KEY (required by every
# service that issues or checks file grants, such as files). The admin endpoint (/healthz,
# /readyz, /metrics) listens on 0.0.0.0:9100 here; if EJ_ADMIN_ADDR moves it, override the
# HEALTHCHECK too (docker run --health-cmd) or rely on the orchestrator's own probes.

ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${DEBIAN_IMAGE} AS build
WORKDIR /src
# The packages of both stages come from deploy/packages.txt (sections build and runtime); the
# Makefile reads its library list from there too.
COPY deploy/packages.txt deploy/packages.sh deploy/
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        $(deploy/packages.sh build) \
 && rm -rf /var/lib/apt/lists/*
COPY Makefile ./
COPY tools/ tools/
COPY proto/ proto/
COPY services/ services/
ARG SERVICE
RUN test -n "${SERVICE}" || { echo "build with --build-arg SERVICE=<name>" >&2; exit 1; } \
 && test -f "services/${SERVICE}/main.c" || { echo "no service named ${SERVICE}" >&2; exit 1; } \
 && make -j"$(nproc)" "build/bin/ej-${SERVICE}" \
 && install -D -m 0755 -s "build/bin/ej-${SERVICE}" "/out/ej-${SERVICE}"

FROM ${DEBIAN_IMAGE} AS runtime
COPY deploy/packages.txt deploy/packages.sh /tmp/packages/
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        $(/tmp/packages/packages.sh runtime) \
 && rm -rf /var/lib/apt/lists/* /tmp/packages \
 && groupadd --system --gid 10001 ej \
 && useradd --system --uid 10001 --gid ej --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin ej
ARG SERVICE
COPY --from=build /out/ej-${SERVICE} /usr/local/bin/ej-${SERVICE}
# A fixed name for ENTRYPOINT (exec form expands no variables).
RUN ln -s "ej-${SERVICE}" /usr/local/bin/ej-service
LABEL org.opencontainers.image.title="easyjournal-${SERVICE}" \
      org.opencontainers.image.description="EasyJournal ${SERVICE} service" \
      org.opencontainers.image.base.name="debian:bookworm-slim"
ENV EJ_ADMIN_ADDR=0.0.0.0:9100 \
    EJ_NATS_URL=nats://nats:4222 \
    EJ_LOG_LEVEL=info
USER 10001:10001
EXPOSE 9100
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["curl", "-fsS", "--max-time", "2", "-o", "/dev/null", "http://127.0.0.1:9100/healthz"]
ENTRYPOINT ["/usr/local/bin/ej-service"]
