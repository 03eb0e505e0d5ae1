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
get() { sed -n "s/^$1=//p" .env | tail -n 1; }
port=$(get SSE_PORT)
port=${port:-8080}
cat <<MSG
Accounts (from .env):
  subscriber  $(get SSE_CLIENT_USERNAME) / $(get SSE_CLIENT_PASSWORD)
  publisher   $(get SSE_BROADCASTER_USERNAME) / $(get SSE_BROADCASTER_PASSWORD)
  admin       $(get SSE_ADMIN_USERNAME) / $(get SSE_ADMIN_PASSWORD)
Try it:
  curl -s -X POST http://127.0.0.1:$port/login -H 'Content-Type: application/json' -d '{"username":"$(get SSE_BROADCASTER_USERNAME)","password":"$(get SSE_BROADCASTER_PASSWORD)"}'
  then mint a token for one of your users with POST /token and open its stream:
  README.md, "Try it with curl", shows every step
  open http://127.0.0.1:$port/example in a browser
MSG
