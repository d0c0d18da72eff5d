#!/bin/sh
# Reads deploy/packages.txt, the one list of the Debian packages EasyJournal needs.
#
#   deploy/packages.sh SECTION...   the packages of those sections (build, runtime, web, dev),
#                                   one a line, in the list's order
#   deploy/packages.sh --modules    "<pkg-config module> <package>" for each build library
#   deploy/packages.sh --sections   the section names, one a line
#
# Plain POSIX sh without awk or sed, so that a bare Debian image can run it before anything is
# installed. PACKAGES_TXT names another list (the tests use it); the default is the file next
# to this script. Exits 2 on an unknown section or a malformed line.
set -eu

SECTIONS="build runtime web dev"

list=${PACKAGES_TXT:-$(dirname "$0")/packages.txt}
[ -r "$list" ] || {
        echo "packages.sh: cannot read $list" >&2
        exit 2
}
[ $# -gt 0 ] || {
        echo "usage: packages.sh SECTION... | --modules | --sections" >&2
        exit 2
}
# Is $1 one of the words in $SECTIONS?
is_section() {
        for s in $SECTIONS; do
                [ "$1" = "$s" ] && return 0
        done
        return 1
}
if [ "$*" = --sections ]; then
        for s in $SECTIONS; do echo "$s"; done
        exit 0
fi
for want in "$@"; do
        is_section "$want" || [ "$want" = --modules ] || {
                echo "packages.sh: unknown section '$want' ($SECTIONS, --modules, --sections)" >&2
                exit 2
        }
done

n=0
while read -r pkg section module rest; do
        n=$((n + 1))
        case $pkg in
        '' | '#'*) continue ;;
        esac
        is_section "$section" || {
                echo "packages.sh: $list:$n: section must be one of: $SECTIONS" >&2
                exit 2
        }
        if [ -z "$module" ] || [ -n "$rest" ]; then
                echo "packages.sh: $list:$n: want three columns: package section module" >&2
                exit 2
        fi
        for want in "$@"; do
                if [ "$want" = --modules ]; then
                        [ "$module" = - ] || echo "$module $pkg"
                elif [ "$want" = "$section" ]; then
                        echo "$pkg"
                fi
        done
done <"$list"
