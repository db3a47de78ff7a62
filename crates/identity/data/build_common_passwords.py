#!/usr/bin/env python3
"""Rebuild common-passwords.txt.gz from its two sources (see README.md in this folder).

Usage:
    python3 build_common_passwords.py SECLISTS_TOP_1M_TXT DJANGO_COMMON_PASSWORDS_GZ OUT_GZ

Every entry is normalised the way `identity::password` normalises a password before looking it
up (NFKC, then lower case), entries with control characters are dropped, and the result is
sorted by code point (the byte order of UTF-8, which the Rust binary search relies on) and
written one per line, gzip-compressed with a zero timestamp so the same input gives the same
bytes.
"""

import gzip
import sys
import unicodedata

# The most frequent entries of the 1M list, whatever their length ...
TOP_N = 100_000
# ... plus every entry of the whole 1M list at least this long: a policy that demands 12
# characters can only ever meet the long entries, so those are the ones that matter most.
LONG_MIN_CHARS = 12


def normalise(password: str) -> str:
    return unicodedata.normalize("NFKC", password).lower()


def usable(password: str) -> bool:
    return password != "" and not any(unicodedata.category(c).startswith("C") for c in password)


def main() -> None:
    seclists_path, django_path, out_path = sys.argv[1:4]
    with open(seclists_path, encoding="utf-8", errors="strict") as f:
        ranked = [line.rstrip("\r\n") for line in f]
    with gzip.open(django_path, "rt", encoding="utf-8") as f:
        django = [line.rstrip("\r\n") for line in f]

    chosen = set()
    for rank, password in enumerate(ranked):
        p = normalise(password)
        if rank < TOP_N or len(p) >= LONG_MIN_CHARS:
            chosen.add(p)
    for password in django:
        chosen.add(normalise(password))
    entries = sorted(p for p in chosen if usable(p))

    with open(out_path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as out:
            out.write(("\n".join(entries) + "\n").encode("utf-8"))
    print(f"{len(entries)} entries written to {out_path}")


if __name__ == "__main__":
    main()
