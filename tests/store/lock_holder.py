"""Child process for the stress test: another program that takes the database's write lock for
longer than the writers' busy timeout, again and again (like a big import, or a backup tool).

Usage: python lock_holder.py DB_PATH HOLD_S GAP_S   (runs until terminated; prints HELD each time)
"""

from __future__ import annotations

import sqlite3
import sys
import time


def main() -> None:
    path, hold, gap = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    while True:
        conn.execute("BEGIN IMMEDIATE")
        time.sleep(hold)
        conn.execute("COMMIT")
        print("HELD", flush=True)
        time.sleep(gap)


if __name__ == "__main__":
    main()
