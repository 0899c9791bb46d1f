"""Run tap-iterable with one fix: tolerate a `transactionalData` that is an object.

Iterable sends `transactionalData` as an object or as a JSON-encoded string. tap-iterable
1.0.1 (`tap_iterable/streams.py`, sync_data_export) calls `json.loads(rec["transactionalData"])`
unconditionally, catching only KeyError, so the first record with an object dies with
`TypeError: the JSON object must be str, bytes or bytearray, not dict`. This wrapper gives the
module a `json` whose `loads` passes non-strings through unchanged and otherwise runs the tap's
own `main` with the same arguments.
"""

import json
import sys
import types

import tap_iterable
import tap_iterable.streams as streams

_loads = json.loads


def _tolerant_loads(s, *args, **kwargs):
    if not isinstance(s, (str, bytes, bytearray)):
        return s
    return _loads(s, *args, **kwargs)


_json = types.ModuleType("json")
_json.__dict__.update(json.__dict__)
_json.loads = _tolerant_loads
streams.json = _json

if __name__ == "__main__":
    sys.argv[0] = "tap-iterable"
    sys.exit(tap_iterable.main())
