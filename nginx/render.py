#!/usr/bin/env python3
"""Render nginx/nginx.conf.template into a self-contained Nginx prefix directory.

    python nginx/render.py --prefix /tmp/tandem-nginx --port 8080 \
        --upstream 127.0.0.1:8000 --root frontend/dist
    nginx -e stderr -p /tmp/tandem-nginx -c /tmp/tandem-nginx/nginx.conf

The prefix gets nginx.conf, tmp/ (temp paths) and the pid file; Nginx runs in
the foreground (`daemon off;` is in the config). Only the template's own
upper-case dollar-brace placeholders are replaced, as envsubst does in the
container. Tests import `render()`; it uses the standard library only.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

TEMPLATE = Path(__file__).with_name("nginx.conf.template")
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


def system_resolver(resolv_conf: Path = Path("/etc/resolv.conf")) -> str:
    """The host's first nameserver (bracketed if IPv6), as Nginx's `resolver` wants it; else 127.0.0.1."""
    try:
        for line in resolv_conf.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                address = parts[1].split("%")[0]
                return f"[{address}]" if ":" in address else address
    except OSError:
        pass
    return "127.0.0.1"


DEFAULTS = {
    "ACCESS_LOG": "off",
    # Where API_UPSTREAM's name is looked up at request time (the image: Docker's 127.0.0.11).
    "NGINX_RESOLVER": f"{system_resolver()} valid=10s",
    "CSP_CONNECT_EXTRA": "https://*.supabase.co wss://*.supabase.co",
    "NGINX_WORKER_CONNECTIONS": "1024",  # within the usual 1024 open-file limit of a user shell
    "MAX_BODY_BYTES": "1048576",  # the API's default MAX_BODY_BYTES (backend/settings.py)
}


def render_text(values: dict[str, str], template: str | None = None) -> str:
    text = TEMPLATE.read_text() if template is None else template
    merged = {**DEFAULTS, **values}
    missing = sorted({name for name in PLACEHOLDER.findall(text) if name not in merged})
    if missing:
        raise ValueError("missing values for: " + ", ".join(missing))
    # A byte count: it is also a number in the 413's JSON (no "1m" here, as for the API).
    if not (merged["MAX_BODY_BYTES"].isdigit() and int(merged["MAX_BODY_BYTES"]) > 0):
        raise ValueError(f"MAX_BODY_BYTES={merged['MAX_BODY_BYTES']!r}: expected a positive number of bytes")
    return PLACEHOLDER.sub(lambda m: merged[m.group(1)], text)


def render(
    prefix: str | Path,
    *,
    port: int,
    upstream: str,
    root: str | Path,
    access_log: str = "off",
    csp_connect_extra: str | None = None,
    max_body_bytes: int | None = None,
    resolver: str | None = None,
) -> Path:
    """Write <prefix>/nginx.conf (and tmp/); return the config's path."""
    prefix = Path(prefix).resolve()
    root = Path(root).resolve()
    if not (root / "index.html").is_file():
        raise FileNotFoundError(f"{root}/index.html not found: build the SPA first (cd frontend && npm run build)")
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    values = {
        "NGINX_PORT": str(port),
        "API_UPSTREAM": upstream,
        "SPA_ROOT": str(root),
        "ACCESS_LOG": "off" if access_log == "off" else f"{access_log} tandem",
    }
    if csp_connect_extra is not None:
        values["CSP_CONNECT_EXTRA"] = csp_connect_extra
    if max_body_bytes is not None:
        values["MAX_BODY_BYTES"] = str(max_body_bytes)
    if resolver is not None:
        values["NGINX_RESOLVER"] = resolver
    conf = prefix / "nginx.conf"
    conf.write_text(render_text(values))
    return conf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prefix", required=True, help="directory for nginx.conf, temp files and the pid file")
    parser.add_argument("--port", type=int, default=8080, help="port Nginx listens on (default 8080)")
    parser.add_argument("--upstream", default="127.0.0.1:8000", help="API host:port (default 127.0.0.1:8000)")
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent / "frontend" / "dist"),
                        help="the built SPA (default frontend/dist)")
    parser.add_argument("--access-log", default="off", help="access log path, or off (default)")
    parser.add_argument("--csp-connect-extra", default=None, help="extra connect-src origins for the CSP")
    parser.add_argument("--max-body-bytes", type=int, default=None,
                        help="request body limit in bytes, as the API's MAX_BODY_BYTES (default 1048576)")
    parser.add_argument("--resolver", default=None,
                        help="DNS server for the upstream's name, with options "
                             "(default: the first nameserver of /etc/resolv.conf, valid=10s)")
    args = parser.parse_args(argv)
    try:
        conf = render(args.prefix, port=args.port, upstream=args.upstream, root=args.root,
                      access_log=args.access_log, csp_connect_extra=args.csp_connect_extra,
                      max_body_bytes=args.max_body_bytes, resolver=args.resolver)
    except (ValueError, FileNotFoundError) as exc:
        print(f"render.py: {exc}", file=sys.stderr)
        return 2
    print(conf)
    return 0


if __name__ == "__main__":
    sys.exit(main())
