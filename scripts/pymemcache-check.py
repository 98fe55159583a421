#!/usr/bin/python3
"""Checks a memcached-compatible store with pymemcache, reply by reply.

Usage: pymemcache-check.py HOST:PORT [KEYS]

Runs set, get, gets, cas (stored and EXISTS), add, replace, append,
prepend, incr, decr, touch, delete and get_many over KEYS keys (default
200, at most 10 000) against the store and checks every answer and value.
Prints one summary line, `pymemcache checks=N passed=N`, and exits 0 when
every check passed; on the first mismatch prints what differed and exits 1.
Every socket operation has a 5-second timeout, so a silent store ends the
run. Needs Debian's python3-pymemcache (run with /usr/bin/python3).
"""

import sys

from pymemcache.client.base import Client

TIMEOUT_SECONDS = 5


class Mismatch(Exception):
    """One answer that is not what the protocol promises."""


class Checker:
    """Counts checks and fails on the first wrong answer."""

    def __init__(self):
        self.checks = 0

    def expect(self, what, got, want):
        self.checks += 1
        if got != want:
            raise Mismatch(f"{what}: got {got!r}, expected {want!r}")


def value_of(index, round_number):
    """A distinct value per key and round, 1 to about 2 000 bytes."""
    body = f"value {index} round {round_number} ".encode()
    return body * (1 + (index * 7 + round_number) % 60)


def run(client, keys, check):
    """Every command over `keys`, each answer checked."""
    names = [f"wc:py:{index}" for index in range(keys)]
    for name in names:
        client.delete(name, noreply=False)

    for index, name in enumerate(names):
        check.expect(f"set {name}", client.set(name, value_of(index, 0), noreply=False), True)
    for index, name in enumerate(names):
        check.expect(f"get {name}", client.get(name), value_of(index, 0))
    check.expect("get of a missing key", client.get("wc:py:missing"), None)

    many = client.get_many(names + ["wc:py:missing"])
    check.expect("get_many key count", len(many), len(names))
    for index, name in enumerate(names):
        check.expect(f"get_many {name}", many.get(name), value_of(index, 0))

    for index, name in enumerate(names):
        value, token = client.gets(name)
        check.expect(f"gets {name}", value, value_of(index, 0))
        check.expect(
            f"cas {name} with the current token",
            client.cas(name, value_of(index, 1), token, noreply=False),
            True,
        )
        check.expect(
            f"cas {name} with a stale token",
            client.cas(name, value_of(index, 2), token, noreply=False),
            False,
        )
        check.expect(f"get {name} after cas", client.get(name), value_of(index, 1))
    check.expect(
        "cas of a missing key",
        client.cas("wc:py:missing", b"x", b"1", noreply=False),
        None,
    )

    for index, name in enumerate(names):
        check.expect(f"add {name} (exists)", client.add(name, b"no", noreply=False), False)
        check.expect(f"replace {name}", client.replace(name, value_of(index, 3), noreply=False), True)
        check.expect(f"append {name}", client.append(name, b"-tail", noreply=False), True)
        check.expect(f"prepend {name}", client.prepend(name, b"head-", noreply=False), True)
        check.expect(
            f"get {name} after replace/append/prepend",
            client.get(name),
            b"head-" + value_of(index, 3) + b"-tail",
        )
    check.expect("add of a new key", client.add("wc:py:new", b"fresh", noreply=False), True)
    check.expect("get of the added key", client.get("wc:py:new"), b"fresh")
    check.expect("replace of a missing key", client.replace("wc:py:missing", b"x", noreply=False), False)
    check.expect("append to a missing key", client.append("wc:py:missing", b"x", noreply=False), False)
    check.expect("prepend to a missing key", client.prepend("wc:py:missing", b"x", noreply=False), False)

    for index in range(min(keys, 100)):
        counter = f"wc:py:counter:{index}"
        check.expect(f"set {counter}", client.set(counter, str(index * 10), noreply=False), True)
        check.expect(f"incr {counter}", client.incr(counter, 5, noreply=False), index * 10 + 5)
        check.expect(f"decr {counter}", client.decr(counter, 3, noreply=False), index * 10 + 2)
        check.expect(f"decr {counter} below zero", client.decr(counter, 10**6, noreply=False), 0)
        check.expect(f"get {counter}", client.get(counter), b"0")
        client.delete(counter, noreply=False)
    check.expect("incr of a missing key", client.incr("wc:py:missing", 1, noreply=False), None)

    for name in names[:50]:
        check.expect(f"touch {name}", client.touch(name, 3600, noreply=False), True)
    check.expect("touch of a missing key", client.touch("wc:py:missing", 10, noreply=False), False)

    for name in names:
        check.expect(f"delete {name}", client.delete(name, noreply=False), True)
    check.expect("delete of a missing key", client.delete(names[0], noreply=False), False)
    check.expect("get_many after delete", client.get_many(names), {})
    client.delete("wc:py:new", noreply=False)


def main(argv):
    if len(argv) not in (2, 3) or ":" not in argv[1]:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    host, port = argv[1].rsplit(":", 1)
    keys = max(1, min(int(argv[2]) if len(argv) == 3 else 200, 10_000))
    client = Client(
        (host, int(port)),
        connect_timeout=TIMEOUT_SECONDS,
        timeout=TIMEOUT_SECONDS,
        default_noreply=False,
    )
    check = Checker()
    try:
        run(client, keys, check)
    except Mismatch as mismatch:
        print(f"pymemcache mismatch after {check.checks} checks: {mismatch}", file=sys.stderr)
        return 1
    except Exception as error:  # a timeout, a refused connection, a protocol error
        print(
            f"pymemcache failed after {check.checks} checks: {type(error).__name__}: {error}",
            file=sys.stderr,
        )
        return 1
    finally:
        client.close()
    print(f"pymemcache checks={check.checks} passed={check.checks}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
