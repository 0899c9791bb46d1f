"""Compare what target-jsonl wrote with what the mock serves (used by .ci/singer-check.sh).

    singer_compare.py MOCK_URL API_KEY START END OUT_DIR STREAM=dataType[/field,...] ...

For each stream, OUT_DIR/<stream>.jsonl must hold exactly the records the mock serves for
dataType over [START, END) (one request for the whole span: the mock's data does not depend on
windows), each once, without the top-level fields listed after `/` (deselected in the catalog;
each must be in some served record, or the check proves nothing). Records are compared as JSON
values with exact decimals (target-jsonl re-serializes records, so bytes differ: key order is
kept, non-ASCII is escaped).
"""

import collections
import decimal
import json
import sys
import urllib.parse
import urllib.request


def canonical(line, dropped=(), seen=None):
    value = json.loads(line, parse_float=decimal.Decimal)
    for field in dropped:
        if field in value:
            del value[field]
            if seen is not None:
                seen[field] += 1
    return json.dumps(value, sort_keys=True, default=lambda d: format(d.normalize(), "f"))


def served(base, key, data_type, start, end, dropped, seen):
    query = urllib.parse.urlencode({"dataTypeName": data_type, "startDateTime": start, "endDateTime": end})
    request = urllib.request.Request(f"{base}/export/data.json?{query}", headers={"Api-Key": key})
    with urllib.request.urlopen(request) as response:
        return [canonical(line, dropped, seen) for line in response.read().decode("utf-8").splitlines() if line.strip()]


def main():
    base, key, start, end, out = sys.argv[1:6]
    failed = False
    for pair in sys.argv[6:]:
        stream, data_type = pair.split("=")
        data_type, _, fields = data_type.partition("/")
        dropped = [f for f in fields.split(",") if f]
        seen = collections.Counter()
        expected = collections.Counter(served(base, key, data_type, start, end, dropped, seen))
        for field in dropped:
            if seen[field] == 0:
                print(f"{stream}: no served record has {field}: the deselection is not tested")
                failed = True
        with open(f"{out}/{stream}.jsonl", encoding="utf-8") as f:
            got = collections.Counter(canonical(line) for line in f if line.strip())
        missing = sum((expected - got).values())
        extra = sum((got - expected).values())
        total = sum(got.values())
        status = "ok" if missing == extra == 0 else "MISMATCH"
        left_out = "".join(f", {field} left out of {seen[field]}" for field in dropped)
        print(f"{stream}: {total} records written, {sum(expected.values())} served{left_out}: "
              f"{missing} missing, {extra} extra or duplicated: {status}")
        failed |= status != "ok" or total == 0
    sys.exit(1 if failed else 0)


main()
