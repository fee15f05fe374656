"""Whether a tracking server answers, asked once with a short timeout: MLflow's own client
retries a dead server for minutes before it gives up with a long traceback."""
from __future__ import annotations

import urllib.error
import urllib.request

from trainlib.errors import ConfigError

TRACKING_TIMEOUT_S = 8.0


def check_tracking_server(uri: str, timeout_s: float = TRACKING_TIMEOUT_S) -> None:
    """An http(s) tracking URI must answer now: MLflow's own client retries for minutes."""
    if not uri.startswith(("http://", "https://")):
        return
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s):
            return
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise ConfigError(f"the MLflow tracking server {uri} refuses us (HTTP {exc.code}); set "
                              f"MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD") from None
        return  # it answers; a server without /health is still a server
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConfigError(f"the MLflow tracking server {uri} does not answer ({reason}); start it "
                          f"(mlflow server --host ... --port ...) or fix --tracking-uri / $MLFLOW_TRACKING_URI") from None
