#!/bin/sh
# The include rules of docs/internals.md, checked: each folder of src/ may
# include only the folders of its own floor and the floors below it. Above
# everything: src/modules/ (may include any floor and other modules), then
# src/modules.c and src/main.c. Nothing below src/modules/ names a module.
# usage: scripts/check_layers.sh [SOURCE_ROOT]    (exit 1 on a violation)
set -eu
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root/src"

# folder: the folders its files may include ("system" headers <...> are free)
allowed() {
    case $1 in
    core) echo "core" ;;
    db) echo "core db" ;;
    auth) echo "core auth" ;;
    redis) echo "core redis" ;;
    audit) echo "core db auth audit" ;;
    http) echo "core db auth redis http" ;;
    jobs) echo "core db redis jobs" ;;
    transport) echo "core db redis jobs transport" ;;
    resource) echo "core db auth audit redis http jobs transport resource" ;;
    docs) echo "core docs" ;;
    storage) echo "core storage" ;;
    modules) echo "*" ;;
    *) echo "" ;;
    esac
}

bad=0
for f in $(find . -name '*.[ch]' | sed 's|^\./||' | sort); do
    case $f in
    */*) dir=${f%%/*} ;;
    *) continue ;; # main.c, modules.c: the top
    esac
    ok=$(allowed "$dir")
    if [ -z "$ok" ]; then
        echo "check_layers: $f: folder src/$dir/ has no rule (add it to scripts/check_layers.sh and docs/internals.md)"
        bad=1
        continue
    fi
    [ "$ok" = "*" ] && continue
    for inc in $(sed -n 's|^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([a-z_]*\)/.*|\1|p' "$f" | sort -u); do
        hit=0
        for a in $ok; do
            [ "$inc" = "$a" ] && hit=1
        done
        if [ $hit -eq 0 ]; then
            echo "check_layers: src/$f includes \"$inc/...\" (src/$dir/ may include: $ok)"
            bad=1
        fi
    done
done
[ $bad -eq 0 ] && echo "check_layers: ok"
exit $bad
