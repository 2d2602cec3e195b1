#!/bin/sh
# exec handler fixture: succeeds with pretty-printed JSON on stdout.
cat >/dev/null
cat <<'JSON'
{
  "answer": 42,
  "ratio": 0.1,
  "items": [1, 2, 3],
  "nested": {"s": "caf\u00e9 \"quoted\"", "t": true, "n": null}
}
JSON
