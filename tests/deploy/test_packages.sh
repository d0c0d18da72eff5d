#!/usr/bin/env bash
# Checks that deploy/packages.txt is the one package list: every stage of both Dockerfiles is
# named after a section of it and installs exactly that section (and nothing named by hand; the
# gateway's web stage, with node, feeds its runtime stage only the vendored API reference),
# tools/install-deps.sh and CI install all of it, the Makefile takes its libraries from it, and
# a library pkg-config cannot find stops `make` with its name and the apt-get command. Ends with
# "N passed, N failed".
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
# Runs a command with its output thrown away (for check).
quiet() { "$@" >/dev/null 2>&1; }
check() { # name command...
        local name=$1
        shift
        if "$@"; then ok "$name"; else bad "$name"; fi
}

LIST=deploy/packages.txt
mapfile -t SECTIONS < <(deploy/packages.sh --sections)

# The list itself: every line well formed, no package twice, only build rows name modules.
check "the list parses" quiet deploy/packages.sh "${SECTIONS[@]}" --modules
dups=$(deploy/packages.sh "${SECTIONS[@]}" | sort | uniq -d)
check "no package is listed twice${dups:+ ($dups)}" test -z "$dups"
modules_outside_build=$(awk '!/^#/ && NF == 3 && $2 != "build" && $3 != "-"' "$LIST")
check "only build packages name a pkg-config module" test -z "$modules_outside_build"

# The packages one Dockerfile stage installs, as the shell in that stage would see them: each
# RUN with its continuation lines joined, every word after "apt-get install" up to "&&" that is
# not an option. A $(.../packages.sh SECTION) word expands to that section of the list; any
# other word is a package named by hand, which must not be there.
stage_installs() { # dockerfile stage
        awk -v want="$2" '
                /^FROM / { stage = ($NF == "AS" ? "" : $NF) }
                stage == want && /^RUN / { run = 1; cmd = "" }
                run { line = $0; sub(/\\$/, "", line); cmd = cmd " " line
                      if ($0 !~ /\\$/) { run = 0; print cmd } }
        ' "$1" | grep -o 'apt-get install[^&]*' | sed 's/^apt-get install//' | tr ' ' '\n' |
                sed '/^$/d; /^-/d'
}

expand_words() { # words on stdin -> packages
        local w sec
        while read -r w; do
                if [[ $w =~ ^\$\(.*packages\.sh$ ]]; then
                        read -r sec
                        sec=${sec%)}
                        deploy/packages.sh "$sec"
                else
                        echo "$w"
                fi
        done
}

# The stages of a Dockerfile, in order ("FROM image AS name").
stages_of() { awk '/^FROM / && $(NF - 1) == "AS" { print $NF }' "$1"; }

for df in deploy/images/gateway.Dockerfile deploy/images/service.Dockerfile; do
        n=$(basename "$df")
        mapfile -t stages < <(stages_of "$df")
        check "$n: has a build and a runtime stage (${stages[*]})" \
                test "${stages[0]}" = build -a "${stages[-1]}" = runtime
        for stage in "${stages[@]}"; do
                check "$n $stage: is named after a section of the list" \
                        grep -qx -- "$stage" <<<"$(printf '%s\n' "${SECTIONS[@]}")"
                words=$(stage_installs "$df" "$stage")
                by_hand=$(grep -v -e 'packages\.sh$' -e ')$' <<<"$words" | tr '\n' ' ')
                check "$n $stage: names no package by hand${by_hand:+ ($by_hand)}" test -z "$by_hand"
                got=$(expand_words <<<"$words" | sort)
                want=$(deploy/packages.sh "$stage" | sort)
                if [[ $got == "$want" ]]; then
                        ok "$n $stage: installs exactly the $stage section"
                else
                        bad "$n $stage: installs [$(tr '\n' ' ' <<<"$got")] but the list's $stage section is [$(tr '\n' ' ' <<<"$want")]"
                fi
        done
        check "$n: copies the list into each of its ${#stages[@]} stages" \
                test "$(grep -c '^COPY deploy/packages.txt deploy/packages.sh ' "$df")" = ${#stages[@]}
done

# The gateway image vendors the API reference (Swagger UI from npm) in its web stage with the
# Makefile's own rule, and its runtime stage takes only those files: no node at run time.
GW=deploy/images/gateway.Dockerfile
check "gateway.Dockerfile web stage: runs make apidocs on the locked package.json" \
        test -n "$(awk '/^FROM .* AS web$/,/^FROM .* AS runtime$/' "$GW" | grep -F 'make apidocs')" \
        -a -n "$(grep -F 'COPY gateway/apidocs/package.json gateway/apidocs/package-lock.json' "$GW")"
from_web=$(grep '^COPY --from=web ' "$GW")
check "gateway.Dockerfile runtime: copies the vendored files from the web stage, nothing else" \
        test "$from_web" = 'COPY --from=web /src/gateway/web/vendor/ /srv/easyjournal/web/vendor/'
node_at_runtime=$(deploy/packages.sh runtime | grep -x -e nodejs -e npm || true)
check "the runtime section holds no node${node_at_runtime:+ ($node_at_runtime)}" \
        test -z "$node_at_runtime"
check ".dockerignore keeps a local gateway/web/vendor out of the image" \
        grep -qx 'gateway/web/vendor' .dockerignore
check ".dockerignore lets the list into the build context" \
        grep -qx '!deploy/packages.txt' .dockerignore
check ".dockerignore lets its reader into the build context" \
        grep -qx '!deploy/packages.sh' .dockerignore

# No other consumer keeps a list of its own.
check "install-deps.sh installs every section (${SECTIONS[*]})" \
        grep -qx "PKGS=\$(deploy/packages.sh ${SECTIONS[*]})" tools/install-deps.sh
check "CI installs through install-deps.sh" grep -qx 'tools/install-deps.sh' .ci/run
check "the Makefile reads its libraries from the list" \
        grep -q 'deploy/packages.sh --modules' Makefile
hand=$(grep -n -E '(^|[ =])lib[a-z0-9.+-]+-dev\b' Makefile tools/install-deps.sh .ci/run \
        deploy/images/*.Dockerfile | grep -v ':#' || true)
check "no -dev package named outside the list${hand:+ ($hand)}" test -z "$hand"

# A library pkg-config cannot find stops make with its name and the command that installs it.
# pkg-config on PATH is replaced by one that knows every module but the one under test.
fake=$(mktemp -d)
trap 'rm -rf "$fake"' EXIT
real=$(command -v pkg-config)
while read -r module pkg; do
        cat >"$fake/pkg-config" <<SH
#!/bin/sh
for a; do [ "\$a" = "$module" ] && exit 1; done
exec $real "\$@"
SH
        chmod +x "$fake/pkg-config"
        out=$(PATH=$fake:$PATH make --no-print-directory -n all 2>&1)
        rc=$?
        if ((rc != 0)) && [[ $out == *"finds no $module;"* &&
                $out == *"apt-get install -y $pkg "* ]]; then
                ok "make without $module stops and names $pkg"
        else
                bad "make without $module: exit $rc, output: $(tail -n 2 <<<"$out")"
        fi
done < <(deploy/packages.sh --modules)
out=$(PATH=$fake:$PATH make --no-print-directory -n clean 2>&1)
check "goals that build nothing skip the check" test $? = 0
# Without pkg-config itself: a PATH holding only what make's shell calls need.
rm -f "$fake/pkg-config"
for t in sh tr dirname; do ln -s "$(command -v "$t")" "$fake/$t"; done
out=$(PATH=$fake "$(command -v make)" --no-print-directory -n all 2>&1)
rc=$?
check "make without pkg-config stops and names it" \
        test $rc != 0 -a -n "$(grep -F 'apt-get install -y pkg-config' <<<"$out")"
check "with every library present, make -n all succeeds" quiet make -n all
# The web stage has node, npm and make but no C library and no pkg-config.
out=$(PATH=$fake "$(command -v make)" --no-print-directory -n apidocs 2>&1)
check "make apidocs needs no pkg-config" test $? = 0

echo "$pass passed, $fail failed"
((fail == 0))
