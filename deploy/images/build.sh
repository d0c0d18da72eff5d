#!/usr/bin/env bash
# Builds the container images of EasyJournal: the gateway and every service (each
# services/<name>/main.c), from the repository root as build context.
#
#   deploy/images/build.sh                 builds easyjournal/<name>:dev for all of them
#   deploy/images/build.sh users gateway   only those
#
# Settings (environment): REGISTRY (image name prefix, "easyjournal"), TAG ("dev"),
# DOCKER (the build command, "docker"; podman works too), PUSH=1 to push after building,
# NPM_CA (a CA certificate file npm must trust when a proxy re-signs TLS: passed to the gateway's
# web stage as the build secret npm-ca).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

REGISTRY=${REGISTRY:-easyjournal}
TAG=${TAG:-dev}
DOCKER=${DOCKER:-docker}
PUSH=${PUSH:-0}
secret=()
if [[ -n ${NPM_CA:-} ]]; then
        secret=(--secret "id=npm-ca,src=$NPM_CA")
fi

names=("$@")
if ((${#names[@]} == 0)); then
        names=(gateway)
        for m in services/*/main.c; do
                [[ -e $m ]] || continue
                s=${m#services/}
                names+=("${s%/main.c}")
        done
fi

command -v "$DOCKER" >/dev/null || {
        echo "build.sh: $DOCKER not found (set DOCKER=podman to use podman)" >&2
        exit 1
}

for name in "${names[@]}"; do
        image=$REGISTRY/$name:$TAG
        if [[ $name == gateway ]]; then
                "$DOCKER" build "${secret[@]}" -f deploy/images/gateway.Dockerfile -t "$image" .
        else
                [[ -f services/$name/main.c ]] || {
                        echo "build.sh: no service named $name" >&2
                        exit 1
                }
                "$DOCKER" build -f deploy/images/service.Dockerfile --build-arg "SERVICE=$name" \
                        -t "$image" .
        fi
        echo "built $image"
        if [[ $PUSH == 1 ]]; then
                "$DOCKER" push "$image"
        fi
done
