#!/bin/sh
# Creates .env from .env.dist on first run, with a random SSE_APP_KEY and random passwords,
# then prints how to log in. An existing .env is left as it is.
set -eu
if [ ! -f .env ]; then
    rand() { openssl rand -hex "$1"; }
    key=$(rand 32)
    cpass=$(rand 12)
    bpass=$(rand 12)
    apass=$(rand 12)
    umask 077
    sed -e "s/^SSE_APP_KEY=.*/SSE_APP_KEY=$key/" \
        -e "s/^SSE_CLIENT_PASSWORD=.*/SSE_CLIENT_PASSWORD=$cpass/" \
        -e "s/^SSE_BROADCASTER_PASSWORD=.*/SSE_BROADCASTER_PASSWORD=$bpass/" \
        -e "s/^SSE_ADMIN_PASSWORD=.*/SSE_ADMIN_PASSWORD=$apass/" \
        .env.dist > .env
    echo "Created .env with a new SSE_APP_KEY and random passwords."
fi
# The last value .env gives $1: "export " and blanks around "=" allowed, one pair of quotes
# taken off, a comment after an unquoted value dropped (README, "Settings"; escapes inside
# double quotes are not undone: this is for showing, ssehub reads the file itself).
from_file() {
    tr -d '\r' < .env |
        sed -n "s/^[[:space:]]*\(export[[:space:]]\{1,\}\)\{0,1\}$1[[:space:]]*=[[:space:]]*//p" |
        tail -n 1 |
        sed -e "s/^\"\(.*\)\"[[:space:]]*\(#.*\)\{0,1\}\$/\1/" -e t \
            -e "s/^'\(.*\)'[[:space:]]*\(#.*\)\{0,1\}\$/\1/" -e t \
            -e 's/^#.*//' -e 's/[[:space:]]\{1,\}#.*//' -e 's/[[:space:]]*$//'
}
# The value ssehub takes for $1: the environment's when it is set (even empty), else .env's.
get() {
    if eval "[ -n \"\${$1+set}\" ]"; then eval "printf '%s\n' \"\$$1\""; else from_file "$1"; fi
}
port=$(get SSE_PORT)
port=${port:-8080}
host=$(get SSE_HOST)
case "$host" in '' | 0.0.0.0 | :: | '[::]') host=127.0.0.1 ;; *:*) host="[$host]" ;; esac
scheme=http
[ -n "$(get SSE_TLS_CERT)" ] && scheme=https
if [ "$port" = 0 ]; then
    where="$scheme://$host:PORT"
    note=" (SSE_PORT=0: the server picks a free port; PORT is in its \"listening on\" line below)"
else
    where="$scheme://$host:$port"
    note=""
fi
cat <<MSG
Accounts:
  subscriber  $(get SSE_CLIENT_USERNAME) / $(get SSE_CLIENT_PASSWORD)
  publisher   $(get SSE_BROADCASTER_USERNAME) / $(get SSE_BROADCASTER_PASSWORD)
  admin       $(get SSE_ADMIN_USERNAME) / $(get SSE_ADMIN_PASSWORD)
Try it$note:
  curl -s -X POST $where/login -H 'Content-Type: application/json' -d '{"username":"$(get SSE_BROADCASTER_USERNAME)","password":"$(get SSE_BROADCASTER_PASSWORD)"}'
  then mint a token for one of your users with POST /token and open its stream:
  README.md, "Try it with curl", shows every step
  open $where/example in a browser
MSG
