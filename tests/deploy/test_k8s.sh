#!/usr/bin/env bash
# Checks the Kubernetes manifests (k8s/) without a cluster: every file a kustomization names
# exists, every service (services/<svc>/main.c) has its manifest made from the shared template
# (k8s/base/service) and is listed in the base with its image, and no manifest sets a retired
# setting. With kubectl on PATH it also builds the base and the dev overlay and checks what
# comes out. Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1

pass=0
fail=0
ok() {
        echo "ok   $1"
        pass=$((pass + 1))
}
bad() {
        echo "FAIL $1"
        fail=$((fail + 1))
}
check() { # name command...
        local name=$1
        shift
        if "$@"; then ok "$name"; else bad "$name"; fi
}

# The entries of the top-level list $2 ("resources", "components", ...) of kustomization $1:
# the "- item" lines right under "$2:".
list_of() {
        awk -v key="$2:" '
                $0 == key { on = 1; next }
                on && /^  - / { sub(/^  - /, ""); print; next }
                on && /^[^ #]/ { on = 0 }
        ' "$1"
}

# Every file or directory a kustomization refers to exists (resources, components, generator
# files, patch files).
while read -r k; do
        dir=$(dirname "$k")
        missing=""
        for key in resources components; do
                while read -r r; do
                        [[ -e $dir/$r ]] || missing="$missing $key:$r"
                done < <(list_of "$k" "$key")
        done
        while read -r f; do
                f=${f#*=}
                [[ -e $dir/$f ]] || missing="$missing file:$f"
        done < <(awk '/^ *files:$/ { on = 1; next } on && /^ *- / { sub(/^ *- /, ""); print; next }
                { on = 0 }' "$k")
        while read -r p; do
                [[ -e $dir/$p ]] || missing="$missing patch:$p"
        done < <(sed -n 's/^ *- path: *//p' "$k")
        check "$k: every file it names exists${missing:+ (missing:$missing)}" test -z "$missing"
done < <(find k8s -name kustomization.yaml | sort)

# Every service is one small kustomization on the template, listed in the base with its image.
base=k8s/base/kustomization.yaml
for m in services/*/main.c; do
        svc=${m#services/}
        svc=${svc%/main.c}
        k=k8s/base/$svc/kustomization.yaml
        check "$svc: has $k" test -f "$k"
        [[ -f $k ]] || continue
        check "$svc: its manifest includes the service template" \
                grep -qx '  - ../service' "$k"
        check "$svc: its manifest names it (service-name: name=$svc)" \
                grep -qx "      - name=$svc" "$k"
        check "$svc: listed in the base's resources" grep -qx "  - $svc" "$base"
        check "$svc: its image easyjournal/$svc is in the base's images" \
                grep -qx "  - name: easyjournal/$svc" "$base"
done
for d in k8s/base/*/; do
        d=${d%/}
        s=${d##*/}
        [[ $s == service ]] && continue
        check "k8s/base/$s belongs to a service (services/$s/main.c)" test -f "services/$s/main.c"
done

retired=$(grep -rn --include='*.yaml' 'EJ_HASH_CONCURRENCY' k8s || true)
check "no manifest sets EJ_HASH_CONCURRENCY (now EJ_SLOW_WORKERS)${retired:+ ($retired)}" \
        test -z "$retired"

if command -v kubectl >/dev/null 2>&1; then
        for t in k8s/base k8s/overlays/dev; do
                if ! out=$(kubectl kustomize "$t" 2>&1); then
                        bad "kubectl kustomize $t: $(tail -n 1 <<<"$out")"
                        continue
                fi
                ok "kubectl kustomize $t builds"
                left=$(grep -nw 'SERVICE' <<<"$out" || true)
                check "$t: the template's placeholders are all replaced${left:+ ($left)}" \
                        test -z "$left"
                left=$(grep -n 'name: service-name' <<<"$out" || true)
                check "$t: the template's name ConfigMap is not deployed" test -z "$left"
                for m in services/*/main.c; do
                        svc=${m#services/}
                        svc=${svc%/main.c}
                        # The Deployment's name, its pod label, container and image.
                        n=$(awk -v s="$svc" '
                                /^kind: Deployment$/ { dep = 1 } /^---$/ { dep = 0 }
                                dep && $0 == "  name: " s { c++ }
                                dep && $0 == "        app.kubernetes.io/name: " s { c++ }
                                dep && $1 == "image:" && index($2, "easyjournal/" s) == 1 { c++ }
                                END { print c + 0 }' <<<"$out")
                        check "$t: Deployment $svc with its label and image easyjournal/$svc" \
                                test "$n" -ge 3
                done
        done
else
        echo "(kubectl not on PATH: the kustomize builds are not checked)"
fi

echo "$pass passed, $fail failed"
((fail == 0))
