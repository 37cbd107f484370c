#!/usr/bin/env python3
"""greeter.py: a wsmod process service in Python.

Says "hi", then answers every message (one line on stdin) with the same text reversed. Exits when
stdin closes (the client disconnected). Output is flushed after each line so the client gets it at
once.
"""
import sys


def main() -> None:
    print("hi", flush=True)
    for line in sys.stdin:
        print(line.rstrip("\n")[::-1], flush=True)


if __name__ == "__main__":
    main()
