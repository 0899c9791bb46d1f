"""pyarrow's NDJSON to Parquet (zstd), for bench/parquet.sh.

    parquet_pyarrow.py IN.ndjson OUT.parquet [--consistent-only]

pyarrow cannot read a field that is a string in some records and an object in others (Iterable's
transactionalData; the mock's drifting fields). With --consistent-only, such fields are left out:
an explicit schema of the fields whose values have one shape in the first 20,000 records, other
fields ignored.
"""

import itertools
import json
import sys

import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq

source, target = sys.argv[1:3]
options = None


def shape(value):
    if isinstance(value, dict):
        return ("object", tuple(sorted((k, shape(v)) for k, v in value.items())))
    if isinstance(value, list):
        return ("array", tuple(sorted({repr(shape(v)) for v in value})))
    return type(value).__name__


if sys.argv[3:4] == ["--consistent-only"]:
    with open(source, "rb") as f:
        head = [json.loads(line) for line in itertools.islice(f, 20000)]
    shapes = {}
    for record in head:
        for name, value in record.items():
            if value is not None:
                shapes.setdefault(name, set()).add(shape(value))
    mixed = {name for name, kinds in shapes.items() if len(kinds) > 1}
    print(f"left out: {sorted(mixed)}", file=sys.stderr)
    for record in head:
        for name in mixed:
            record.pop(name, None)
    sample = pj.read_json(pa.BufferReader("\n".join(map(json.dumps, head)).encode()))
    options = pj.ParseOptions(explicit_schema=sample.schema, unexpected_field_behavior="ignore")
pq.write_table(pj.read_json(source, parse_options=options), target, compression="zstd")
