#!/usr/bin/env bash
# Writes web/openapi.json from create_app(...).openapi() (in process, no server) and generates the
# console's TypeScript client types from it (openapi-typescript; openapi-fetch uses them at run
# time). Both outputs are committed, so `npm ci && npm run build` works without Python; the test
# tests/web/test_api_client.py fails when they are out of date. Never edit them by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
"$PY" -m logmaster.api.console > web/openapi.json.tmp
mv web/openapi.json.tmp web/openapi.json
cd web
[ -d node_modules ] || npm ci --no-audit --no-fund
npx --no-install openapi-typescript openapi.json -o src/api/schema.gen.ts >/dev/null
echo "wrote web/openapi.json and web/src/api/schema.gen.ts"
