#!/usr/bin/env python3
"""A process function for tests: the body is a command, one word and its arguments.

  put K V | get K | delete K | scan START END | call FN BODY AT | param NAME | pid | print TEXT
  sleep SECONDS | raise MESSAGE | exit CODE | garbage | big N | number N | stdin | flood
  ids | nonewprivs | write FOLDER | grow MIB | spin | files N | env NAME
"""
import os
import subprocess
import sys
import time

import enoki


def handle(body):
    cmd, *args = body.decode().split(" ")
    if cmd == "put":
        enoki.kv.put(args[0], args[1])
        return "ok"
    if cmd == "get":
        value = enoki.kv.get(args[0])
        return "<absent>" if value is None else value
    if cmd == "delete":
        enoki.kv.delete(args[0])
        return "ok"
    if cmd == "scan":
        return ",".join(f"{k}={v.decode()}" for k, v in enoki.kv.scan(args[0], args[1]))
    if cmd == "call":
        return enoki.call(args[0], args[1], at=args[2])
    if cmd == "param":
        return enoki.param(args[0], "<unset>")
    if cmd == "pid":
        return str(os.getpid())
    if cmd == "print":
        print(" ".join(args))  # goes to the function's log, not to the protocol
        enoki.log("logged " + " ".join(args))
        return "printed"
    if cmd == "sleep":
        time.sleep(float(args[0]))
        return "slept"
    if cmd == "raise":
        raise ValueError(" ".join(args))
    if cmd == "exit":
        sys.stderr.flush()
        os._exit(int(args[0]))
    if cmd == "garbage":
        os.write(enoki._out.fileno(), b"this is not a frame\n")
        return "unreachable"
    if cmd == "number":
        return int(args[0])  # sent as its decimal text
    if cmd == "stdin":  # the protocol's input is out of reach: a child reading stdin gets nothing
        read = subprocess.run(["cat"], capture_output=True, timeout=5).stdout
        return f"{len(sys.stdin.read())} {len(read)}"
    if cmd == "flood":  # stderr as fast as a C program can, until the call is killed
        os.execvp("yes", ["yes", "x" * 1000])  # fd 1 is a copy of stderr here
    if cmd == "env":  # a variable of its environment
        return os.environ.get(args[0], "<unset>")
    if cmd == "ids":  # who it runs as, and its process group
        return f"{os.getuid()} {os.getgid()} {os.getpgrp()} {os.getpid()}"
    if cmd == "nonewprivs":
        with open("/proc/self/status") as status:
            return next(l.split()[1] for l in status if l.startswith("NoNewPrivs:"))
    if cmd == "write":  # tries to make a file in FOLDER
        try:
            with open(os.path.join(args[0], "written-by-a-function"), "w") as f:
                f.write("x")
            return "written"
        except OSError as e:
            return "refused: " + type(e).__name__
    if cmd == "grow":  # keeps MIB mebibytes resident, then waits to be killed
        block = bytearray(int(args[0]) << 20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(10)
        return "still alive"
    if cmd == "spin":  # CPU time until something stops it
        while True:
            pass
    if cmd == "files":  # how many of N more files it can open
        opened = []
        try:
            for _ in range(int(args[0])):
                opened.append(open("/dev/null"))
        except OSError:
            pass
        count = len(opened)
        for f in opened:
            f.close()
        return str(count)
    if cmd == "big":
        return b"x" * int(args[0])
    raise ValueError("unknown command " + cmd)


enoki.serve(handle)
