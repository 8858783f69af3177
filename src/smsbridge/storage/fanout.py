"""Writing one fan-out batch: cursor compare-and-set, messages, outbox entries, links,
exclusions — one transaction, with the driver directly (no per-row SQLAlchemy processing).

A campaign message's first event (``queued``, or ``scheduled`` when it waits for a send time)
is not written: it is implied by the message row (see ``storage.messages.get_events``), and
leaving it out spares a third of the rows a launch writes. The statements are each
dialect's own (``storage.dialects``).
"""

from __future__ import annotations

from smsbridge.storage.database import Database
from smsbridge.storage.records import Exclusion as Exclusion
from smsbridge.storage.records import FanoutBatch as FanoutBatch
from smsbridge.storage.records import NewRecipient as NewRecipient


async def write_batch(db: Database, batch: FanoutBatch) -> bool:
    """Write the batch if the cursor is still ``expected_cursor`` and the campaign running;
    False (nothing written) otherwise. :class:`Conflict` if a recipient's number already has a
    message of this campaign (only a concurrent fan-out of the same campaign can cause it)."""
    return await db.dialect_ops.write_fanout(db, batch)
