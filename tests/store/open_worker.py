"""Child process for the open-race test: opens the chat database whenever the parent says so.

Reads lines ``PATH DELAY_S`` on stdin; for each, sleeps DELAY_S, opens PATH with ``open_store``
(what the app does at start), writes one JSON line (persistent, problem, migrated from), closes.
Exits at end of input. One process serves many rounds, so a round costs an open, not a start-up.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tui.store import open_store


def main() -> None:
    print("READY", flush=True)
    for line in sys.stdin:
        path, delay = line.split()
        time.sleep(float(delay))
        opened = open_store(Path(path))
        store = opened.store
        print(
            json.dumps(
                {
                    "persistent": store.is_persistent,
                    "problem": str(opened.problem) if opened.problem else None,
                    "lock_retries": store.lock_retries,
                }
            ),
            flush=True,
        )
        store.close()


if __name__ == "__main__":
    main()
