# syntax=docker/dockerfile:1
#
# The EasyJournal gateway: the HTTP entry (JSON API, browser app, /healthz, /readyz), with
# /metrics on the admin port 9100 (EJ_ADMIN_ADDR), never on the public one.
#
#   docker build -f deploy/images/gateway.Dockerfile -t easyjournal/gateway:dev .
#
# Build context: the repository root (see .dockerignore). The two stages of service.Dockerfile:
# "build" runs make build/bin/ej-gateway with the -dev packages, "runtime" holds the shared
# libraries, the stripped binary, the browser app (gateway/web) and curl for the HEALTHCHECK;
# plus "web", which runs `make apidocs` (npm ci on the locked gateway/apidocs/package.json) for
# the API reference's Swagger UI files: only those files reach the runtime stage, which has no
# node. Exec form throughout: nothing needs a shell at run time.
#
# Behind a proxy that re-signs TLS, give npm its CA certificate as a build secret (read by the
# web stage only, kept in no layer):
#   docker build --secret id=npm-ca,src=/path/to/ca.crt -f deploy/images/gateway.Dockerfile .
#
# Settings come from the environment (see README.md): EJ_HTTP_ADDR, EJ_NATS_URL, EJ_WEB_ROOT,
# EJ_SITE_NAME, EJ_REQUEST_TIMEOUT_MS, EJ_BODY_LIMIT, EJ_HTTP_THREADS, EJ_SESSION_CACHE_MS,
# EJ_COOKIE_SECURE. The gateway holds no state: run as many replicas as the load needs.

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
COPY services/common/ services/common/
COPY gateway/ gateway/
RUN make -j"$(nproc)" build/bin/ej-gateway \
 && install -D -m 0755 -s build/bin/ej-gateway /out/ej-gateway

FROM ${DEBIAN_IMAGE} AS web
WORKDIR /src
COPY deploy/packages.txt deploy/packages.sh deploy/
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        $(deploy/packages.sh web) \
 && rm -rf /var/lib/apt/lists/*
COPY Makefile ./
COPY gateway/apidocs/package.json gateway/apidocs/package-lock.json gateway/apidocs/
RUN --mount=type=secret,id=npm-ca \
    if [ -s /run/secrets/npm-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm-ca; fi \
 && make apidocs

FROM ${DEBIAN_IMAGE} AS runtime
COPY deploy/packages.txt deploy/packages.sh /tmp/packages/
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        $(/tmp/packages/packages.sh runtime) \
 && rm -rf /var/lib/apt/lists/* /tmp/packages \
 && groupadd --system --gid 10001 ej \
 && useradd --system --uid 10001 --gid ej --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin ej
COPY --from=build /out/ej-gateway /usr/local/bin/ej-gateway
# Read-only, owned by root: the gateway only reads its web root.
COPY gateway/web/ /srv/easyjournal/web/
COPY --from=web /src/gateway/web/vendor/ /srv/easyjournal/web/vendor/
LABEL org.opencontainers.image.title="easyjournal-gateway" \
      org.opencontainers.image.description="EasyJournal HTTP gateway and browser app" \
      org.opencontainers.image.base.name="debian:bookworm-slim"
ENV EJ_HTTP_ADDR=0.0.0.0:8080 \
    EJ_ADMIN_ADDR=0.0.0.0:9100 \
    EJ_NATS_URL=nats://nats:4222 \
    EJ_WEB_ROOT=/srv/easyjournal/web \
    EJ_LOG_LEVEL=info
USER 10001:10001
EXPOSE 8080 9100
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["curl", "-fsS", "--max-time", "2", "-o", "/dev/null", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/ej-gateway"]
