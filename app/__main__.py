"""``python -m app [--port 8000] [--clothing-detector PATH] ...``: load the models once, serve with waitress.

Every option can also be given as an environment variable ``CLOTHINGREC_APP_<OPTION>``
(e.g. ``CLOTHINGREC_APP_PORT=8080``); command-line flags win.
"""
from __future__ import annotations

import argparse
import logging
import sys

from clothingrec.paths import configure_environment

from app.config import MODES, AppConfig


def parse_args(argv=None) -> AppConfig:
    p = argparse.ArgumentParser(prog="python -m app", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", help="bind address (default 127.0.0.1: loopback only)")
    p.add_argument("--port", type=int, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--person-detector", dest="person_detector",
                   help="'auto' (committed runs/results/person-* weights, else untrained), 'untrained', "
                        "or a run folder / checkpoint")
    p.add_argument("--clothing-detector", dest="clothing_detector",
                   help="'auto' (runs/results/detector-*), 'untrained', or a run folder / checkpoint")
    p.add_argument("--classifier", help="'auto' (runs/results/classifier-mobilenet_v3_small-*), 'untrained', "
                                        "or a weights file")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:1 | mps")
    p.add_argument("--threads", type=int, help="torch intra-op threads")
    p.add_argument("--serving", choices=("fastest", "eager"),
                   help="fastest (default): trained models on the CPU run the fastest ONNX Runtime path that agrees "
                        "with eager PyTorch, measured at start; eager: PyTorch as trained")
    p.add_argument("--replicas", type=int, help="model copies serving requests in parallel (default 1)")
    p.add_argument("--server-threads", dest="server_threads", type=int, help="waitress worker threads")
    p.add_argument("--default-mode", dest="default_mode", choices=MODES)
    p.add_argument("--margin", type=float, help="person box padding before cropping (fraction)")
    p.add_argument("--score-threshold", dest="score_threshold", type=float)
    p.add_argument("--person-score-threshold", dest="person_score_threshold", type=float)
    p.add_argument("--max-persons", dest="max_persons", type=int)
    p.add_argument("--max-content-length", dest="max_content_length", type=int, help="bytes")
    p.add_argument("--max-pixels", dest="max_pixels", type=int)
    p.add_argument("--smoke-min-size", dest="smoke_min_size", type=int,
                   help="input size of the untrained detectors")
    args = vars(p.parse_args(argv))
    return AppConfig.from_env(**args)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    configure_environment()  # project caches, offline; before the models (and ultralytics) are imported
    config = parse_args(argv)
    from app.server import create_app
    from app.wsgi import make_server

    app = create_app(config)
    server = make_server(app, config)
    print(f"[app] serving on http://{config.host}:{server.port}/ (waitress, {config.server_threads} threads); "
          "Ctrl-C stops", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
