"""Run stac-api-validator offline: the JSON schemas it fetches come from the local mirror `shared/schemas/`.

    python scripts/stac_api_validator_offline.py --schemas ../shared/schemas -- \
        --root-url http://127.0.0.1:8080/stac/ --conformance core --conformance filter ...

Everything after `--` goes to stac-api-validator unchanged. HTTP(S) requests (through `requests` and through
`urllib`) to a URL under a prefix of `url-map.json` are answered from the mirror (longest prefix wins);
requests to hosts other than 127.0.0.1/localhost fail at once instead of waiting for a network that is not
there; requests to the API under test go through untouched.
"""

from __future__ import annotations

import argparse
import email.message
import io
import json
import sys
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


class SchemaMirror:
    def __init__(self, root: Path):
        self.root = root
        mapping: dict[str, str] = json.loads((root / "url-map.json").read_text())
        self.prefixes = sorted(mapping.items(), key=lambda kv: len(kv[0]), reverse=True)

    def path(self, url: str) -> Path | None:
        url = url.split("#", 1)[0]
        for prefix, folder in self.prefixes:
            if url.startswith(prefix):
                p = self.root / folder / url[len(prefix) :]
                return p if p.is_file() else None
        return None


def _is_local(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOCAL_HOSTS


def install(mirror: SchemaMirror) -> None:
    """Patch `requests` and `urllib` so that schema URLs are served by the mirror."""
    import requests
    from requests.adapters import HTTPAdapter

    original_send = HTTPAdapter.send

    def send(self, request, *args, **kwargs):  # noqa: ANN001, ANN202
        url = request.url or ""
        local = mirror.path(url)
        if local is not None:
            resp = requests.Response()
            resp.status_code = 200
            resp._content = local.read_bytes()
            resp.headers["Content-Type"] = "application/json"
            resp.url = url
            resp.request = request
            resp.encoding = "utf-8"
            return resp
        if not _is_local(url):
            raise requests.ConnectionError(f"offline: {url} is neither local nor in the schema mirror")
        return original_send(self, request, *args, **kwargs)

    HTTPAdapter.send = send  # type: ignore[method-assign]

    class MirrorHandler(urllib.request.BaseHandler):
        handler_order = 100  # before the default HTTP(S) handlers

        def _open(self, req: urllib.request.Request):  # noqa: ANN202
            url = req.full_url
            local = mirror.path(url)
            if local is not None:
                headers = email.message.Message()
                headers["Content-Type"] = "application/json"
                resp = urllib.response.addinfourl(io.BytesIO(local.read_bytes()), headers, url, 200)
                resp.msg = "OK"  # read by urllib's HTTPErrorProcessor (e.g. jsonschema's $ref retrieval)
                return resp
            if not _is_local(url):
                raise urllib.error.URLError(f"offline: {url} is neither local nor in the schema mirror")
            return None  # let the default handlers do it

        http_open = _open
        https_open = _open

    urllib.request.install_opener(urllib.request.build_opener(MirrorHandler()))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    rest: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, rest = argv[:i], argv[i + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schemas", type=Path, required=True, help="folder with url-map.json")
    args = parser.parse_args(argv)
    install(SchemaMirror(args.schemas.resolve()))

    from stac_api_validator.__main__ import main as validator_main

    try:
        rc = validator_main.main(args=rest, prog_name="stac-api-validator", standalone_mode=False)
    except SystemExit as e:
        return int(e.code or 0)
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
