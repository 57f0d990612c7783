"""The 24-hour chart of a service in an environment, drawn on the server as SVG (no script, no CDN).

Status bands (one coloured run per stretch of the same worst status), the probe latency per minute
as a line, and each deployment as a mark on the time axis.
"""
from __future__ import annotations

from datetime import timedelta

from .models import HealthMinute

WIDTH, HEIGHT, TOP, BAND = 720, 180, 10, 14  # the band sits under the latency plot
PLOT_BOTTOM = HEIGHT - 40


def day_chart(environment_id, service_id, deployments, now, hours=24):
    start = now - timedelta(hours=hours)
    span = (now - start).total_seconds()

    def x(at):
        return round(max(0.0, min(1.0, (at - start).total_seconds() / span)) * WIDTH, 1)

    minutes = list(HealthMinute.objects.filter(environment_id=environment_id, service_id=service_id, minute__gte=start)
                   .order_by("minute").values_list("minute", "worst", "checks", "latency_ms_sum", "failures"))
    bands = []
    for minute, worst, _checks, _latency, _failures in minutes:
        left, right = x(minute), x(minute + timedelta(minutes=1))
        if bands and bands[-1]["status"] == worst and abs(bands[-1]["x2"] - left) < 0.5:
            bands[-1]["x2"] = right
        else:
            bands.append({"status": worst, "x1": left, "x2": right, "since": minute})
    for band in bands:
        band["width"] = max(round(band["x2"] - band["x1"], 1), 1)
    latencies = [(minute, total / checks) for minute, _worst, checks, total, _f in minutes if checks]
    peak = max((value for _, value in latencies), default=0)
    scale = _nice(peak)
    points = " ".join(f"{x(minute + timedelta(seconds=30))},{round(PLOT_BOTTOM - (value / scale) * (PLOT_BOTTOM - TOP), 1)}"
                      for minute, value in latencies)
    marks = [{"x": x(d.finished_at), "label": f"#{d.pk} {d.release.version}" + (" (rollback)" if d.kind == "rollback" else ""),
              "pk": d.pk, "rollback": d.kind == "rollback"} for d in deployments if d.finished_at and d.finished_at >= start]
    ticks = [{"x": x(start + timedelta(hours=h)), "at": start + timedelta(hours=h)} for h in range(0, hours + 1, 6)]
    return {"width": WIDTH, "height": HEIGHT, "plot_bottom": PLOT_BOTTOM, "band_y": PLOT_BOTTOM + 4, "band_height": BAND,
            "bands": bands, "points": points, "marks": marks, "ticks": ticks, "scale_ms": scale, "top": TOP,
            "tick_y": HEIGHT - 6, "empty": not minutes}


def _nice(value):
    for step in (50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000):
        if value <= step:
            return step
    return value or 1
