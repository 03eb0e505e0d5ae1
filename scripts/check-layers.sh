#!/bin/sh
# Fails when a file of src/ includes a header of a higher layer (docs/internals.md, "Files").
#   scripts/check-layers.sh [SRC_DIR]    checks SRC_DIR (default: the repository's src)
#   scripts/check-layers.sh --self-test  checks that planted violations are caught
# A layer is a directory of src/; src/main.c is the layer "main". A file may include
# the headers of its own layer and of the layers below it. Every violation is one line
# on stdout naming the file, the header and both layers; the exit status is then 1.
# A quoted include that no layer holds, a header name held by two layers (every layer
# is on the include path, so it would be ambiguous), and a file outside every layer
# are reported the same way.
set -eu

# Lowest first, one rank per line. Layers on one line sit side by side: neither may
# include the other (auth and store both rest on base alone).
LAYERS='base
auth store
net
http
pubsub
api
app
main'

# check SRC_DIR: prints the violations, returns 1 when there is one.
check() {
    src=${1%/}
    [ -d "$src" ] || { echo "check-layers: no directory $src" >&2; return 2; }
    files=$(find "$src" -type f \( -name '*.c' -o -name '*.h' \) | LC_ALL=C sort)
    [ -n "$files" ] || { echo "check-layers: no sources in $src" >&2; return 2; }
    # Input 1: every file; input 2: every quoted include, as "path:#include "name"".
    # shellcheck disable=SC2086 # the paths hold no blanks: they are our sources
    { echo "$files"; echo '--'; grep -H -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' $files || true; } |
        awk -v src="$src" -v layers="$LAYERS" '
        function layer_of(path,    rest, i) {
            rest = substr(path, length(src) + 2)
            i = index(rest, "/")
            if (i > 0) return substr(rest, 1, i - 1)
            return rest == "main.c" ? "main" : ""
        }
        function report(line) { print line; bad++ }
        BEGIN {
            n = split(layers, rows, "\n")
            for (i = 1; i <= n; i++) {
                m = split(rows[i], names, " ")
                for (j = 1; j <= m; j++) rank[names[j]] = i
            }
        }
        !listed {
            if ($0 == "--") { listed = 1; next }
            nfiles++
            l = layer_of($0)
            if (!(l in rank)) { report($0 ": is in no layer (" (l == "" ? "src/ itself" : l) ")"); next }
            if ($0 ~ /\.h$/) {
                name = $0
                sub(/.*\//, "", name)
                if (name in home && home[name] != l)
                    report($0 ": \"" name "\" is also a header of layer " home[name] " (ambiguous on the include path)")
                else
                    home[name] = l
            }
            next
        }
        {
            i = index($0, ":")
            path = substr($0, 1, i - 1)
            name = substr($0, i + 1)
            sub(/^[^"]*"/, "", name)
            sub(/".*/, "", name)
            from = layer_of(path)
            if (!(from in rank)) next
            base = name
            sub(/.*\//, "", base)
            if (!(base in home)) { report(path ": includes \"" name "\", which no layer holds (from " from ")"); next }
            to = home[base]
            if (rank[to] > rank[from])
                report(path ": includes \"" name "\" of layer " to ", above its layer " from)
            else if (rank[to] == rank[from] && to != from)
                report(path ": includes \"" name "\" of layer " to ", beside its layer " from " (neither may include the other)")
        }
        END {
            if (bad) { printf "check-layers: %d violation(s) in %s\n", bad, src > "/dev/stderr"; exit 1 }
            printf "check-layers: %d files in %s, no include of a higher layer\n", nfiles, src
        }'
}

# Plants violations in a small tree and expects each to be reported, then a clean tree to pass.
self_test() {
    t=$(mktemp -d)
    trap 'rm -rf "$t"' EXIT
    mkdir -p "$t/src/base" "$t/src/auth" "$t/src/store" "$t/src/net"
    : > "$t/src/base/low.h"
    : > "$t/src/store/store.h"
    printf '#include "low.h"\n' > "$t/src/net/high.h"
    printf '#include "low.h"\n#include "high.h"\n' > "$t/src/base/low.c"
    printf '#include <stdio.h>\n#include "store.h"\n' > "$t/src/auth/id.c"
    printf '#include "high.h"\n#include "store.h"\n' > "$t/src/main.c"
    out=$(check "$t/src" 2>/dev/null) && { echo "check-layers self-test: planted violations passed" >&2; return 1; }
    for want in "src/base/low.c: includes \"high.h\" of layer net, above its layer base" \
                "src/auth/id.c: includes \"store.h\" of layer store, beside its layer auth"; do
        case $out in
        *"$want"*) ;;
        *) echo "check-layers self-test: missing \"$want\" in: $out" >&2; return 1 ;;
        esac
    done
    [ "$(echo "$out" | wc -l)" -eq 2 ] || { echo "check-layers self-test: expected 2 lines: $out" >&2; return 1; }
    printf '#include "low.h"\n' > "$t/src/base/low.c"
    printf '#include "low.h"\n' > "$t/src/auth/id.c"
    check "$t/src" > /dev/null || { echo "check-layers self-test: a clean tree failed" >&2; return 1; }
    echo "check-layers self-test: planted violations caught, clean tree passes"
}

case ${1:-} in
--self-test) self_test ;;
-h | --help) sed -n '2,10p' "$0" ;;
'') cd "$(dirname "$0")/.." && check src ;;
*) check "$1" ;;
esac
