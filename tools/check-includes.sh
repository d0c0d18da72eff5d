#!/usr/bin/env bash
# Fails on any include cycle among the C files of gateway/, services/ and tests/.
#
# A module is a .c file and the .h of the same name (http.c + http.h); a module depends on
# another when one of its files says #include "other.h" (or "other.c", as unit tests do). A
# header is found next to the including file, then in services/common/ and gateway/ (the
# build's -I paths); generated headers (proto/gen) and system headers are leaves. When two
# modules reach each other, calls go both ways between them: a lower module that needs to tell
# a higher one something takes a callback, and a helper both use moves down into a lower file.
#
#   tools/check-includes.sh [ROOT]      prints the cycle and exits 1, or exits 0
#   tools/check-includes.sh --self-test builds small trees with and without a cycle and checks
#                                       that the check tells them apart
set -euo pipefail

SELF=$(realpath "${BASH_SOURCE[0]}")

if [[ ${1:-} == --self-test ]]; then
        tmp=$(mktemp -d "${TMPDIR:-/tmp}/ej-includes.XXXXXX")
        trap 'rm -rf "$tmp"' EXIT
        mkdir -p "$tmp/gateway" "$tmp/services/common" "$tmp/tests/unit"
        cd "$tmp"
        # low.c is called by high.c; types.h (no .c) is shared; a test includes a .c.
        printf '#include "types.h"\n' >gateway/low.h
        printf '#include "low.h"\n' >gateway/low.c
        printf '#include "low.h"\n#include "types.h"\n' >gateway/high.c
        printf '#include "high.h"\n' >gateway/main.c
        : >gateway/high.h
        printf '#include "str.h"\n' >gateway/types.h
        : >services/common/str.h
        printf '#include "../../gateway/low.c"\n#include "high.h"\n' >tests/unit/test_low.c
        if ! "$SELF" "$tmp" >/dev/null; then
                echo "check-includes: self-test: a tree without a cycle was refused" >&2
                exit 1
        fi
        # low.c calls back into high.c by name: a cycle.
        printf '#include "low.h"\n#include "high.h"\n' >gateway/low.c
        if "$SELF" "$tmp" >/dev/null; then
                echo "check-includes: self-test: a direct cycle was not found" >&2
                exit 1
        fi
        # The same, hidden behind a header without code of its own.
        printf '#include "low.h"\n' >gateway/low.c
        printf '#include "str.h"\n#include "high.h"\n' >gateway/types.h
        if "$SELF" "$tmp" >/dev/null; then
                echo "check-includes: self-test: a cycle through a shared header was not found" >&2
                exit 1
        fi
        echo "check-includes: self-test passed"
        exit 0
fi

ROOT=${1:-$(cd "$(dirname "$SELF")/.." && pwd)}
cd "$ROOT"

# Edges "from to" between modules (paths without extension), one per line.
edges() {
        local f dir inc target
        while IFS= read -r f; do
                dir=$(dirname "$f")
                while IFS= read -r inc; do
                        target=""
                        for cand in "$dir/$inc" "services/common/$inc" "gateway/$inc"; do
                                if [[ -f $cand ]]; then
                                        target=$(realpath --relative-to=. "$cand")
                                        break
                                fi
                        done
                        [[ -n $target ]] || continue
                        target=${target%.*}
                        [[ ${f%.*} == "$target" ]] && continue
                        printf '%s %s\n' "${f%.*}" "$target"
                done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
        done < <(find gateway services tests -path '*/node_modules' -prune -o \
                -type f \( -name '*.c' -o -name '*.h' \) -print | sort)
}

# Modules with code: the stems of the .c files. A header without a .c of its own (gateway.h,
# storage_impl.h) holds only types and declarations: it is not a module, and what it includes
# counts as included by the files that include it.
code=$(find gateway services tests -path '*/node_modules' -prune -o -type f -name '*.c' -print |
        sed 's/\.c$//' | sort -u | tr '\n' ' ')

edges | sort -u | awk -v code="$code" '
        BEGIN {
                k = split(code, c, " ")
                for (i = 1; i <= k; i++)
                        iscode[c[i]] = 1
        }
        { adj[$1] = adj[$1] " " $2 }
        # The code modules `n` reaches directly or through header-only headers, into deps[].
        function reach(n, seen,    i, k, parts, m) {
                k = split(adj[n], parts, " ")
                for (i = 1; i <= k; i++) {
                        m = parts[i]
                        if (m in seen)
                                continue
                        seen[m] = 1
                        if (m in iscode)
                                out[m] = 1
                        else
                                reach(m, seen)
                }
        }
        function visit(n,    i, k, parts, m, j, path) {
                color[n] = 1
                stack[++depth] = n
                k = split(dep[n], parts, " ")
                for (i = 1; i <= k; i++) {
                        m = parts[i]
                        if (color[m] == 1) {
                                path = m
                                for (j = depth; j >= 1 && stack[j] != m; j--)
                                        path = stack[j] " -> " path
                                print "include cycle: " m " -> " path
                                return 1
                        }
                        if (color[m] == 0 && visit(m))
                                return 1
                }
                depth--
                color[n] = 2
                return 0
        }
        END {
                for (n in iscode) {
                        delete out
                        delete seen
                        seen[n] = 1
                        reach(n, seen)
                        dep[n] = ""
                        for (m in out)
                                if (m != n)
                                        dep[n] = dep[n] " " m
                }
                for (n in iscode)
                        if (color[n] == 0 && visit(n)) {
                                print "check-includes: modules that include each other call each " \
                                      "other: pass a callback down, or move the shared part into " \
                                      "a lower file"
                                exit 1
                        }
                print "check-includes: no include cycle"
        }'
