"""Build kio message objects from keyword values (requests and responses alike).

kio generates one dataclass per message and version; a field present in v9 may
be absent from v3.  :func:`make` keeps the values the class declares and drops
the rest, so callers write one set of values for every version.  The API
layer's response Builder (kavka.api.responses) and the brokers' own requests to
each other (replication, forwarding to the controller) both use it.
"""

from __future__ import annotations

import datetime
from dataclasses import fields
from functools import lru_cache
from typing import Any

NO_THROTTLE = datetime.timedelta(0)


@lru_cache(maxsize=None)
def field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls))


def make(cls: type, **values: Any) -> Any:
    """Instantiate a kio dataclass with the subset of ``values`` it declares."""
    names = field_names(cls)
    if "throttle_time" in names and "throttle_time" not in values:
        values["throttle_time"] = NO_THROTTLE
    return cls(**{k: v for k, v in values.items() if k in names})
