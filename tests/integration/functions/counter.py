#!/usr/bin/env python3
"""Adds 1 to the integer under the key named by the body ("count" if empty) and returns it.

A read-modify-write made safe against concurrent invocations by a conditional put: if another
invocation wrote the key between the get and the put, the put is refused and this one retries.
"""
import enoki


def handle(body):
    key = body.decode() or "count"
    while True:
        value, version = enoki.kv.get_versioned(key)
        n = int(value or 0) + 1
        if enoki.kv.put(key, str(n), if_version=version):
            return str(n)


enoki.serve(handle)
