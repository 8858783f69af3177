"""process_tuning.settle(): what `serve` and `worker` do to their process once started.

Run in a child interpreter: freezing the test process's heap would keep every later test's
garbage cycles alive.
"""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import gc, json, sys
from smsbridge import process_tuning
before = {"frozen": gc.get_freeze_count(), "young": gc.get_threshold()[0],
          "switch": sys.getswitchinterval()}
process_tuning.settle()
after = {"frozen": gc.get_freeze_count(), "young": gc.get_threshold()[0],
         "switch": sys.getswitchinterval()}
print(json.dumps([before, after]))
"""


def test_settle_freezes_startup_objects_and_tunes_the_collector_and_switching() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    before, after = json.loads(result.stdout)
    assert before["frozen"] == 0 and after["frozen"] > 1_000  # modules, classes, functions…
    assert (before["young"], after["young"]) == (700, 10_000)
    assert before["switch"] == 0.005 and after["switch"] == 0.001
