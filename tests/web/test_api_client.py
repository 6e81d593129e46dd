"""The console's API client is generated from the current API: web/openapi.json equals
create_app(...).openapi(), and web/src/api/schema.gen.ts equals openapi-typescript's output for
it. Run scripts/gen-api-client.sh (or `make api-client`) after changing the API."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from logmaster.api.console import openapi_json

WEB = Path(__file__).resolve().parents[2] / "web"
FIX = "the generated client is stale: run scripts/gen-api-client.sh and commit the result"


def test_openapi_json_is_current() -> None:
    """web/openapi.json is exactly the schema the API serves now."""
    assert (WEB / "openapi.json").read_text() == openapi_json(), FIX


def test_typescript_client_is_generated_from_it(tmp_path: Path) -> None:
    """schema.gen.ts is openapi-typescript's output for web/openapi.json, untouched."""
    cli = WEB / "node_modules" / ".bin" / "openapi-typescript"
    assert cli.exists(), "web/node_modules is missing: run `make web/node_modules/.installed`"
    assert shutil.which("node"), "node is missing"
    out = tmp_path / "schema.gen.ts"
    subprocess.run(
        [str(cli), "openapi.json", "-o", str(out)],
        cwd=WEB,
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert (WEB / "src" / "api" / "schema.gen.ts").read_text() == out.read_text(), FIX


def test_operation_ids_are_readable() -> None:
    """Every operation id is a plain function name (search_events), not FastAPI's default."""
    import json

    spec = json.loads((WEB / "openapi.json").read_text())
    ids = [op["operationId"] for path in spec["paths"].values() for op in path.values()]
    assert ids and all(i.isidentifier() and "api_v1" not in i for i in ids)
    assert len(ids) == len(set(ids))
