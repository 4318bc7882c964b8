#!/bin/sh
# A process function in plain shell: keeps the body under key "last" of its keygroup (a `put`
# frame of the worker protocol, answered `ok`) and returns it in capitals.
export LC_ALL=C                                   # ${#body} counts bytes
while read -r verb id len; do
  body=$(head -c "$len")
  printf 'put 4 %d\nlast%s' "${#body}" "$body"
  read -r reply code n                            # "ok", or "error CODE N" and N bytes of message
  if [ "$reply" = ok ]; then
    out=$(printf %s "$body" | tr a-z A-Z)
    printf 'return %d\n%s' "${#out}" "$out"
  else
    message=$(head -c "$n")
    printf 'fail %d\n%s' "${#message}" "$message"
  fi
done
