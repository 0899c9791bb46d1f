"""Compares what DuckDB reads from an `export --format parquet` directory with what the mock served.

    duckdb_check.py MOCK_URL API_KEY START END LAKE TYPE:ID_FIELD:TIME_FIELD...

For each data type: the records the mock serves for [START, END) (fetched from MOCK_URL), grouped
by the file they belong in (the UTC day of TIME_FIELD, and the window in the file's name), must
match DuckDB's `count(*)` and `count(DISTINCT ID_FIELD)` per file, and per `dt` partition its
count and typed TIME_FIELD range; TIME_FIELD must be read as TIMESTAMP WITH TIME ZONE.
"""

import collections
import datetime
import json
import re
import sys
import urllib.parse
import urllib.request

import duckdb

url, key, start, end, lake = sys.argv[1:6]
problems = []


def iterable_time(text):
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S %z").astimezone(datetime.timezone.utc)


def rfc3339(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def micros(t):
    return int(t.timestamp()) * 1_000_000 + t.microsecond


def served(data_type):
    query = urllib.parse.urlencode({
        "dataTypeName": data_type,
        "startDateTime": rfc3339(start).strftime("%Y-%m-%d %H:%M:%S"),
        "endDateTime": rfc3339(end).strftime("%Y-%m-%d %H:%M:%S"),
    })
    request = urllib.request.Request(f"{url}/export/data.json?{query}", headers={"Api-Key": key})
    with urllib.request.urlopen(request) as response:
        return [json.loads(line) for line in response.read().decode().splitlines() if line.strip()]


def window_of(name):
    m = re.fullmatch(r"part-(\d{8}T\d{6}Z)-(\d{8}T\d{6}Z)(-\d+)?\.parquet", name)
    parse = lambda s: datetime.datetime.strptime(s, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    return parse(m.group(1)), parse(m.group(2))


con = duckdb.connect()
for spec in sys.argv[6:]:
    data_type, id_field, time_field = spec.split(":")
    records = served(data_type)
    glob = f"{lake}/{data_type}/*/*.parquet"
    source = f"read_parquet('{glob}', filename = true, hive_partitioning = true)"

    kinds = dict(con.sql(f'SELECT DISTINCT \'t\', typeof("{time_field}") FROM {source}').fetchall())
    if kinds != {"t": "TIMESTAMP WITH TIME ZONE"}:
        problems.append(f"{data_type}: {time_field} is read as {kinds}")

    # Per dt partition: count and range of the typed time.
    expected_days = collections.defaultdict(list)
    for r in records:
        t = iterable_time(r[time_field])
        expected_days[t.strftime("%Y-%m-%d")].append(micros(t))
    expected = {d: (len(ts), min(ts), max(ts)) for d, ts in expected_days.items()}
    got = {
        dt: (n, lo, hi)
        for dt, n, lo, hi in con.sql(
            f'SELECT CAST(dt AS VARCHAR), count(*), epoch_us(min("{time_field}")), epoch_us(max("{time_field}")) '
            f"FROM {source} GROUP BY ALL"
        ).fetchall()
    }
    if got != expected:
        problems.append(f"{data_type}: per dt (count, min, max) {got} != served {expected}")
    # The plain query of the issue, with DuckDB's own detection of the `dt=` directories.
    plain = dict(con.sql(f"SELECT CAST(dt AS VARCHAR), count(*) FROM '{glob}' GROUP BY dt").fetchall())
    if plain != {d: v[0] for d, v in expected.items()}:
        problems.append(f"{data_type}: SELECT dt, count(*) FROM '{glob}' GROUP BY dt gave {plain}")

    # Per file: count(*) and count(DISTINCT id) of the served records of its day and window.
    got_files = {
        f"{filename.split('/')[-2]}/{filename.split('/')[-1]}": (n, distinct)
        for filename, n, distinct in con.sql(
            f'SELECT filename, count(*), count(DISTINCT "{id_field}") FROM {source} GROUP BY ALL'
        ).fetchall()
    }
    for name, (n, distinct) in sorted(got_files.items()):
        dt, file = name.split("/")
        lo, hi = window_of(file)
        mine = [
            r[id_field] for r in records
            if f"dt={iterable_time(r[time_field]).strftime('%Y-%m-%d')}" == dt and lo <= iterable_time(r[time_field]) < hi
        ]
        if (n, distinct) != (len(mine), len(set(mine))):
            problems.append(f"{data_type} {name}: count {n}, distinct {distinct}; served {len(mine)}, {len(set(mine))}")
        if n != distinct and id_field == "messageId":
            problems.append(f"{data_type} {name}: {n - distinct} duplicate messageIds")
    total = sum(n for n, _ in got_files.values())
    if total != len(records):
        problems.append(f"{data_type}: {total} rows in {len(got_files)} files, the mock served {len(records)}")
    print(
        f"[duckdb-check] {data_type}: {len(got_files)} files, {total} rows = served; "
        + ", ".join(f"{d}: {v[0]}" for d, v in sorted(got.items()))
    )

if problems:
    for p in problems:
        print(f"[duckdb-check] {p}", file=sys.stderr)
    sys.exit(1)
