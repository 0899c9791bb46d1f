"""Compare what target-jsonl wrote with what the mock serves (used by .ci/singer-check.sh).

    singer_compare.py MOCK_URL API_KEY START END OUT_DIR STREAM=dataType [STREAM=dataType ...]

For each stream, OUT_DIR/<stream>.jsonl must hold exactly the records the mock serves for
dataType over [START, END) (one request for the whole span: the mock's data does not depend on
windows), each once. Records are compared as JSON values with exact decimals (target-jsonl
re-serializes records, so bytes differ: key order is kept, non-ASCII is escaped).
"""

import collections
import decimal
import json
import sys
import urllib.parse
import urllib.request


def canonical(line):
    value = json.loads(line, parse_float=decimal.Decimal)
    return json.dumps(value, sort_keys=True, default=lambda d: format(d.normalize(), "f"))


def served(base, key, data_type, start, end):
    query = urllib.parse.urlencode({"dataTypeName": data_type, "startDateTime": start, "endDateTime": end})
    request = urllib.request.Request(f"{base}/export/data.json?{query}", headers={"Api-Key": key})
    with urllib.request.urlopen(request) as response:
        return [canonical(line) for line in response.read().decode("utf-8").splitlines() if line.strip()]


def main():
    base, key, start, end, out = sys.argv[1:6]
    failed = False
    for pair in sys.argv[6:]:
        stream, data_type = pair.split("=")
        expected = collections.Counter(served(base, key, data_type, start, end))
        with open(f"{out}/{stream}.jsonl", encoding="utf-8") as f:
            got = collections.Counter(canonical(line) for line in f if line.strip())
        missing = sum((expected - got).values())
        extra = sum((got - expected).values())
        total = sum(got.values())
        status = "ok" if missing == extra == 0 else "MISMATCH"
        print(f"{stream}: {total} records written, {sum(expected.values())} served: "
              f"{missing} missing, {extra} extra or duplicated: {status}")
        failed |= status != "ok" or total == 0
    sys.exit(1 if failed else 0)


main()
