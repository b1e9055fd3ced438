"""A subscribed consumer as a child process (see group_clients.ProcessMember).

Prints ``A [partitions]`` when its assignment changes and ``R [[p, o], ...]``
for each batch, before committing it, so the parent knows what was processed
even if it is killed between the two.
"""

import json
import sys
import threading

from group_clients import Report, Settings, consume_loop


class PrintingReport(Report):
    def add_records(self, pairs) -> None:
        print("R", json.dumps([list(p) for p in pairs]), flush=True)

    def set_assignment(self, partitions) -> None:
        current = sorted(partitions)
        if current != sorted(self.assignment):
            print("A", json.dumps(current), flush=True)
        super().set_assignment(current)


if __name__ == "__main__":
    consume_loop(Settings(**json.loads(sys.argv[1])), threading.Event(), PrintingReport())
