#!/usr/bin/env python3
"""Checks that the folders include one another only downwards, as
docs/ARCHITECTURE.md lays them out:

  common/   nothing of ours
  runner/   common/
  http/     common/
  cluster/  http/, common/
  server/   cluster/ (main.c starts it), http/, runner/, common/
  client/   runner/, common/
  bench/    nothing of ours (each program stands alone)

tests/ and fuzz/ may include anything. A header is found by its name, which
is unique in the tree; one generated in the build tree (tsexec_filter.h)
belongs to the folder of the source that generates it.

    check_layers.py SOURCE_DIR

Exits 1 with a line per upward include, 0 when there is none.
"""

import os
import re
import sys

ALLOWED = {
    "common": {"common"},
    "runner": {"runner", "common"},
    "http": {"http", "common"},
    "cluster": {"cluster", "http", "common"},
    "server": {"server", "cluster", "http", "runner", "common"},
    "client": {"client", "runner", "common"},
    "bench": {"bench"},
}
GENERATED = {"tsexec_filter.h": "runner"}
INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    src = os.path.abspath(sys.argv[1])
    owner = dict(GENERATED)
    files = []
    for folder in ALLOWED:
        for root, _, names in os.walk(os.path.join(src, folder)):
            for name in names:
                if name.endswith((".c", ".h")):
                    files.append((folder, os.path.join(root, name)))
                    if name.endswith(".h"):
                        owner[name] = folder
    bad = 0
    for folder, path in sorted(files):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for inc in INCLUDE_RE.findall(text):
            where = owner.get(os.path.basename(inc))
            if where is None:
                print("%s: includes \"%s\", which is in none of the checked folders"
                      % (os.path.relpath(path, src), inc))
                bad += 1
            elif where not in ALLOWED[folder]:
                print("%s: includes %s/%s: %s/ may include only %s"
                      % (os.path.relpath(path, src), where, inc, folder,
                         ", ".join(sorted(f + "/" for f in ALLOWED[folder]))))
                bad += 1
    print("%d files checked, %d upward includes" % (len(files), bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
