"""``mmbench leaderboard build | serve``: the static HTML leaderboard."""

from __future__ import annotations

import argparse
import functools
import http.server
import urllib.parse
from pathlib import Path

from mmbench.errors import MMBenchError

DEFAULT_REPORTED = Path("leaderboards") / "reported"
DEFAULT_BASELINE = "fusion-dropout"


def add_parser(sub: argparse._SubParsersAction, common) -> None:
    board = sub.add_parser("leaderboard", help="build or preview the static HTML leaderboard",
                           description="Build a static HTML leaderboard from run records, or preview one.")
    actions = board.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser("build", help="render run records into a static site",
                               description="Render every run record under INPUT... (folders searched recursively) "
                               "and the reported numbers into a static site.")
    build.add_argument("inputs", nargs="+", metavar="INPUT", help="folders (or files) of run records")
    build.add_argument("--out", required=True, help="site folder (replaced atomically if it is an mmbench site)")
    build.add_argument("--reported", default=None, metavar="DIR",
                       help=f"CSVs of paper-reported numbers (default: {DEFAULT_REPORTED} if it exists; 'none' to omit)")
    build.add_argument("--profile", default="all", choices=["all", "smoke", "full"],
                       help="only runs of this training profile (default: all, smoke rows flagged)")
    build.add_argument("--baseline", default=None,
                       help="reference method of the significance markers (default: fusion-dropout; a method "
                            "given here must be among the runs)")
    common(build, suppress=True)
    serve = actions.add_parser("serve", help="preview a built site on http://127.0.0.1:PORT",
                               description="Serve a built site locally (http.server, 127.0.0.1 only).")
    serve.add_argument("site", help="a folder written by 'mmbench leaderboard build'")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    common(serve, suppress=True)
    common(board, suppress=True)


def _reported_dir(value: str | None) -> Path | None:
    if value == "none":
        return None
    if value is None:
        return DEFAULT_REPORTED if DEFAULT_REPORTED.is_dir() else None
    path = Path(value)
    if not path.is_dir():
        raise MMBenchError(f"--reported {value}: no such folder; give the folder of the reported CSVs or 'none'.")
    return path


def leaderboard_command(args: argparse.Namespace) -> int:
    if args.action == "serve":
        return _serve(Path(args.site), args.port)
    from mmbench.leaderboard import build_site

    summary = build_site([Path(p) for p in args.inputs], Path(args.out), _reported_dir(args.reported),
                         profile=None if args.profile == "all" else args.profile,
                         baseline=args.baseline or DEFAULT_BASELINE, require_baseline=args.baseline is not None,
                         plugins=args.plugin or (), disable=args.disable or ())
    print(f"built {summary.pages} page(s) for {summary.tasks} task(s) from {summary.records} run record(s) "
          f"into {summary.out}/ (open {summary.out / 'index.html'})")
    return 0


class SiteRequestHandler(http.server.SimpleHTTPRequestHandler):
    """The standard file handler, but a path holding a NUL byte (``/%00``) is a 400 with one log
    line, not a traceback."""

    def send_head(self):  # noqa: ANN201 (http.server's signature)
        if "\x00" in urllib.parse.unquote(self.path):
            self.send_error(400, "Bad request path (NUL byte)")
            return None
        return super().send_head()


def site_handler(site: Path):
    """The request handler class serving ``site``."""
    return functools.partial(SiteRequestHandler, directory=str(site))


def _serve(site: Path, port: int) -> int:
    from mmbench.leaderboard.site import SITE_MARKER

    if not 0 <= port <= 65535:
        raise MMBenchError(f"--port {port} is not a TCP port; use 1-65535 (0 picks a free one).")
    if not (site / SITE_MARKER).is_file():
        raise MMBenchError(f"{site} is not a site built by 'mmbench leaderboard build'; build one first.")
    handler = site_handler(site)
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        raise MMBenchError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); pick another --port.") from None
    print(f"serving {site}/ on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)", flush=True)
    with server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped.")
    return 0
