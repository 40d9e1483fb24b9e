"""The ECB's `eurofxref-hist.csv` for the simulated period, served over plain HTTP.

The real file lives at https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist.csv (no
authentication); the sandbox serves the same layout (`statex_bi.demo.fx.ecb_csv`) at the same path.
"""

from __future__ import annotations

from statex_bi.demo.fx import ecb_csv
from statex_bi.demo.sandbox import Request, Response, Sandbox

PATH = "/stats/eurofxref/eurofxref-hist.csv"


def build(world) -> Sandbox:
    """The FX sandbox serving the world's reference rates (not started)."""
    return serve(ecb_csv(world.fx))


def environment(url: str) -> dict[str, str]:
    """The variable that points the FX connector at the sandbox."""
    return {"FX_RATES_URL": url + PATH}


def serve(csv_text: str) -> Sandbox:
    """A sandbox serving `csv_text` as the ECB history file (not started).

    Args:
        csv_text: the file's content, usually `ecb_csv(fx)`; tests pass altered copies.

    Returns:
        The sandbox; start it with `with sandbox:` or `sandbox.start()`.
    """
    sandbox = Sandbox("fx")

    @sandbox.route("GET", PATH)
    def history(request: Request) -> Response:
        return Response(200, csv_text, content_type="text/csv")

    return sandbox
