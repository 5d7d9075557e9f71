"""`orchestrator status NAME`: local state plus what the cloud and the engine say right now.

Each live check is reported on its own (`checked`, and the reason when it could not be made), so being offline or
without credentials never fails the command; the plain `status` (no NAME) stays local and fast.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

from orchestrator.errors import OrchestratorError

if TYPE_CHECKING:
    from orchestrator.state import Deployment

UPCTL_TIMEOUT = 30.0
PROBE_TIMEOUT = 5.0


def _server_live(dep: Deployment) -> dict[str, Any]:
    from orchestrator.context import default_provider
    from orchestrator.providers.base import ServerNotFound
    from orchestrator.transports.local import run_local

    if dep.server is None:
        return {"checked": False, "state": None, "error": "no server recorded"}
    show = default_provider().show(dep.server.uuid)
    try:
        info = show.parse(run_local(show.action.argv, UPCTL_TIMEOUT))
    except ServerNotFound:
        return {"checked": True, "state": "gone", "error": None}
    except OrchestratorError as exc:
        return {"checked": False, "state": None, "error": exc.message}
    return {"checked": True, "state": info.state, "error": None}


def _engine_live(dep: Deployment) -> dict[str, Any]:
    """One probe of each readiness check the deploy waited for (no waiting, no SSH): ok, or the first failure."""
    from orchestrator.config import DeploymentConfig
    from orchestrator.engines import engine_for
    from orchestrator.health import run_check
    from orchestrator.secrets import API_KEY, load_secrets

    if dep.engine is None or dep.server is None or not dep.server.ip:
        return {"checked": False, "ok": None, "detail": "no engine recorded"}
    try:
        cfg = DeploymentConfig.model_validate(dep.config)
        secrets = load_secrets(cfg, create_api_key=False)[0]
        checks = engine_for(cfg).readiness(dep.server.ip, API_KEY in secrets)
        detail = ""
        for check in checks:
            once = dataclasses.replace(check, wait=None, liveness=None, log_tail=None, timeout=PROBE_TIMEOUT)
            detail = run_check(once, secrets).stdout
    except OrchestratorError as exc:
        return {"checked": True, "ok": False, "detail": exc.message}
    except ValueError as exc:  # the config snapshot no longer validates
        return {"checked": False, "ok": None, "detail": f"cannot read the config snapshot: {exc}"}
    return {"checked": True, "ok": True, "detail": detail}


def live(dep: Deployment) -> dict[str, Any]:
    from orchestrator.cost import cost_so_far, price_of

    now = time.time()
    price, currency = price_of(dep.config)
    return {
        "checked_at": now,
        "server": _server_live(dep),
        "engine_health": _engine_live(dep),
        "ttl_left_s": round(dep.auto_stop_at - now, 1) if dep.auto_stop_at is not None else None,
        "price_per_hour": price,
        "currency": currency if price is not None else None,
        "cost_so_far": round(cost_so_far(price, dep.created_at, now), 4) if price and dep.server else None,
    }


def live_lines(doc: dict[str, Any]) -> list[str]:
    srv, eng = doc["server"], doc["engine_health"]
    lines = [
        "live:",
        "  server:  " + (srv["state"] if srv["checked"] else f"not checked: {srv['error']}"),
    ]
    if not eng["checked"]:
        lines.append(f"  engine:  not checked: {eng['detail']}")
    else:
        lines.append(f"  engine:  {'healthy' if eng['ok'] else 'UNHEALTHY'}: {eng['detail']}")
    if doc["price_per_hour"] is not None:
        so_far = f", {doc['cost_so_far']:.2f} {doc['currency']} so far" if doc["cost_so_far"] is not None else ""
        lines.append(f"  cost:    {doc['price_per_hour']:.2f} {doc['currency']} per hour{so_far}")
    return lines
