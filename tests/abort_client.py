#!/usr/bin/env python3
"""abort_client.py - a Python client that gives up on a slow answer, the way
scripts with a read timeout do. tests/test_cli.c runs it:

    python3 tests/abort_client.py PORT [PATH]

It sends GET PATH (default /long-task) to 127.0.0.1:PORT with http.client,
then waits (at most 20 s) for the line "go" on stdin: the test sends it once
the server's handler runs, so the client cannot leave before the job starts.
Then it waits for the answer with a 0.5 s socket timeout; the job is still
running, so the wait times out, and the client closes the connection, prints
"gave up" and exits 0. It exits 3 if an answer came after all, 2 on any
other problem. Standard library only.
"""
import http.client
import select
import socket
import sys


def main():
    if len(sys.argv) not in (2, 3):
        print("usage: abort_client.py PORT [PATH]", file=sys.stderr)
        return 2
    port = int(sys.argv[1])
    path = sys.argv[2] if len(sys.argv) == 3 else "/long-task"

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    print("sent", flush=True)

    ready, _, _ = select.select([sys.stdin], [], [], 20)
    if not ready or sys.stdin.readline().strip() != "go":
        print("abort_client: no go from the test (its stdin closed, or 20 s passed)", file=sys.stderr)
        conn.close()
        return 2

    conn.sock.settimeout(0.5)
    try:
        resp = conn.getresponse()
    except (socket.timeout, TimeoutError):
        # The point of the test: the client gives up and leaves.
        conn.close()
        print("gave up", flush=True)
        return 0
    print("abort_client: an answer came: %d %s" % (resp.status, resp.read()),
          file=sys.stderr)
    conn.close()
    return 3


if __name__ == "__main__":
    sys.exit(main())
