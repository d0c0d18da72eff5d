#!/bin/sh
# Writes a C file embedding a service's numbered migrations, in file-name order:
#   tools/embed-sql.sh users services/users/schema > users_schema.c
# defines `const struct ej_migration ej_<svc>_migrations[]` and `ej_<svc>_migrations_n`.
set -eu
svc=$1
dir=$2
echo "/* Generated from $dir by tools/embed-sql.sh; do not edit. */"
echo '#include "db.h"'
echo "const struct ej_migration ej_${svc}_migrations[] = {"
for f in "$dir"/*.sql; do
        [ -e "$f" ] || continue
        printf '    {"%s",\n' "$(basename "$f")"
        # Each line becomes a C string literal; backslashes and quotes escaped.
        sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/     "/' -e 's/$/\\n"/' "$f"
        echo '    },'
done
echo "};"
echo "const unsigned long ej_${svc}_migrations_n = sizeof(ej_${svc}_migrations) / sizeof(ej_${svc}_migrations[0]);"
