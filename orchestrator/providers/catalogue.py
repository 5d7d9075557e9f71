"""Choosing from what a provider offers: a plan by name or pattern, a zone, GPU stock, an OS template.

Provider-neutral: these work on the lists any provider's parsers return (base.py's PlanInfo, TemplateInfo).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from orchestrator.errors import CapacityError, ProviderError
from orchestrator.providers.base import PlanInfo, TemplateInfo


def select_plan(plans: Sequence[PlanInfo], pattern: str) -> PlanInfo:
    """Exact plan name first, else a full-match regex that must match exactly one plan."""
    for plan in plans:
        if plan.name == pattern:
            return plan
    matches = [p for p in plans if plan_matches(p.name, pattern)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        names = ", ".join(p.name for p in matches)
        raise ProviderError(
            f"plan pattern {pattern!r} matches {len(matches)} plans: {names}",
            "set the plan to one exact name from that list",
        )
    gpu_names = [p.name for p in plans if p.is_gpu]
    close = difflib.get_close_matches(pattern, gpu_names, n=5, cutoff=0.4) or sorted(gpu_names)[:8]
    raise ProviderError(
        f"no UpCloud plan is named or matches {pattern!r}",
        f"GPU plans include: {', '.join(close)}" if close else "`upctl server plans` lists no GPU plans",
    )


def plan_matches(name: str, pattern: str) -> bool:
    """Whether plan ``name`` is what ``pattern`` asks for (select_plan's rule: the exact name, or a full match)."""
    if name == pattern:
        return True
    try:
        return re.fullmatch(pattern, name) is not None
    except re.error:
        return False


def check_zone(zones: Sequence[str], zone: str) -> None:
    """Raise when ``zone`` is not one of the zones this account sees."""
    if zone in zones:
        return
    close = difflib.get_close_matches(zone, list(zones), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"known zones: {', '.join(sorted(zones))}"
    raise ProviderError(f"UpCloud has no zone {zone!r}", hint + " (GPU servers live in fi-hel2)")


def check_gpu_availability(devices: dict[str, dict[str, int]], zone: str, plan: str) -> None:
    """CapacityError when ``plan`` has no free GPUs in ``zone``; the hint names zones that have some."""
    available = devices.get(zone, {})
    amount = available.get(plan)
    if amount is not None and amount > 0:
        return
    elsewhere = sorted(z for z, plans in devices.items() if z != zone and plans.get(plan, 0) > 0)
    other_plans = sorted(p for p, n in available.items() if n > 0)
    if elsewhere:
        hint = f"{plan} is available in: {', '.join(elsewhere)}"
    elif other_plans:
        hint = f"no zone has {plan} free right now; {zone} has: {', '.join(other_plans)}"
    else:
        hint = "no zone reports free capacity for this plan; try again later or pick another GPU plan"
    reason = "has no free capacity" if amount is not None else "is not offered"
    raise CapacityError(f"GPU plan {plan} {reason} in zone {zone}", hint)


def _one_template(matches: list[TemplateInfo], wanted: str, how: str) -> TemplateInfo:
    if len(matches) == 1:
        return matches[0]
    listing = "; ".join(f"{t.title} ({t.uuid})" for t in matches)
    raise ProviderError(
        f"OS template {wanted!r} {how} {len(matches)} templates: {listing}",
        "set the template to one UUID or exact title from that list",
    )


def resolve_template(templates: Sequence[TemplateInfo], wanted: str) -> TemplateInfo:
    """UUID or exact title; else a unique case-insensitive substring of the title; else a regex search."""
    for tmpl in templates:
        if tmpl.uuid == wanted:
            return tmpl
    exact = [t for t in templates if t.title == wanted]
    if exact:
        return _one_template(exact, wanted, "has the same title as")
    needle = wanted.casefold()
    matches = [t for t in templates if needle and needle in t.title.casefold()]
    if not matches:
        try:
            rx = re.compile(wanted, re.IGNORECASE)
            matches = [t for t in templates if rx.search(t.title)]
        except re.error:
            matches = []
    if matches:
        return _one_template(matches, wanted, "matches")
    titles = ", ".join(sorted(t.title for t in templates)[:10])
    raise ProviderError(
        f"no public OS template matches {wanted!r}",
        f"available templates: {titles}" if titles else "`upctl storage list --public --template` returned none",
    )
