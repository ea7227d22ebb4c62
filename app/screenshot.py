"""Screenshot of the demo page after an upload: ``python -m app.screenshot --out docs/demo.png [app options]``.

Starts the app (in this process, waitress on a free loopback port) with the same options as
``python -m app``, uploads a CCP photo in headless system Chromium and saves a full-page PNG.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from clothingrec.paths import configure_environment


def main(argv=None) -> Path:
    configure_environment()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("docs/demo.png"))
    p.add_argument("--photo", type=int, default=1, help="CCP photo number (photos/NNNN.jpg)")
    p.add_argument("--mode", default="two-stage")
    p.add_argument("--width", type=int, default=1100)
    args, rest = p.parse_known_args(argv)

    from app.__main__ import parse_args
    from app.server import create_app
    from app.testing import ccp_photo, chromium_context
    from app.wsgi import BackgroundServer

    config = parse_args([*rest, "--port", "0"])
    photo = ccp_photo(args.photo)
    with BackgroundServer(create_app(config), config) as server, chromium_context((args.width, 1400)) as ctx:
        page = ctx.new_page()
        page.goto(server.url + "/", wait_until="load")
        page.select_option("#mode", args.mode)
        page.set_input_files("#image-input", str(photo))
        page.click("#submit")
        page.wait_for_selector("body[data-state]", timeout=300_000)
        if page.get_attribute("body", "data-state") != "done":
            raise SystemExit(f"upload failed: {page.inner_text('#error')}")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.out), full_page=True)
    print(f"[screenshot] {args.out} ({photo.name}, mode {args.mode})")
    return args.out


if __name__ == "__main__":
    main(sys.argv[1:])
