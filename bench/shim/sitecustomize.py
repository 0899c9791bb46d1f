"""Point the Python Iterable connectors at the local mock server (benchmark use only).

Neither airbyte-source-iterable nor tap-iterable has a base-URL setting: both build URLs on
https://api.iterable.com/api/ and send them with `requests`. This module is put on PYTHONPATH
for their runs only (Python imports `sitecustomize` at start-up) and patches
`requests.adapters.HTTPAdapter.send`, which every `requests` call ends in, to:

- rewrite https://api.iterable.com and https://api.eu.iterable.com to $BENCH_MOCK_URL
  (e.g. http://127.0.0.1:8080), keeping path and query;
- copy tap-iterable's `api_key` header to `Api-Key`, the header the mock (like Iterable's
  documentation) expects;
- drop exact repeats of a query parameter (same name and value): tap-iterable puts every
  parameter in the URL twice (it appends `?{urlencode(params)}` and also passes `params=`);
  the mock answers a repeated parameter with 400 BadParams, Iterable evidently takes it;
- append each rewritten URL to $BENCH_URL_LOG, so the benchmark knows which windows the tool
  requested and can count the records the mock served for them.

See run_tap.py for the one fix tap-iterable needs to read the mock's (and Iterable's) records.
"""

import os

_MOCK = os.environ.get("BENCH_MOCK_URL", "").rstrip("/")
_LOG = os.environ.get("BENCH_URL_LOG")
_HOSTS = ("https://api.iterable.com", "https://api.eu.iterable.com")


def _dedup_query(url):
    base, sep, query = url.partition("?")
    if not sep:
        return url
    seen = set()
    kept = []
    for pair in query.split("&"):
        if pair not in seen:
            seen.add(pair)
            kept.append(pair)
    return base + "?" + "&".join(kept)


def _install():
    try:
        import requests.adapters
    except Exception:  # requests not installed in this interpreter: nothing to patch
        return
    original = requests.adapters.HTTPAdapter.send

    def send(self, request, *args, **kwargs):
        url = request.url or ""
        for host in _HOSTS:
            if url.startswith(host + "/") or url == host:
                request.url = _dedup_query(_MOCK + url[len(host):])
                if "api_key" in request.headers and "Api-Key" not in request.headers:
                    request.headers["Api-Key"] = request.headers["api_key"]
                if _LOG:
                    with open(_LOG, "a", encoding="utf-8") as f:
                        f.write(request.url + "\n")
                break
        return original(self, request, *args, **kwargs)

    requests.adapters.HTTPAdapter.send = send


if _MOCK:
    _install()
