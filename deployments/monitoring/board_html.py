"""The board's cells as HTML, written in Python: the one place a cell's markup is made.

A Django template include per cell costs about 2 ms; the board has 5,000 cells at 100 environments x
50 services, so the page (and an update poll sending cells) writes them here instead: URLs are
reversed once per column and filled in, times are formatted once per distinct value, every text is
escaped. The markup is the one the CSS and the tests know (``.cell``, ``.cell-<status>``,
``.cell-link``, ``.cell-reason`` shown on hover and focus, ``.rolled-back``, ``.pending-mark``).
"""
from __future__ import annotations

import time
from datetime import datetime
from html import escape

from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe

_PLACEHOLDER = "gantry-board-placeholder"
_ID_PLACEHOLDER = 987654321
OOB = ' hx-swap-oob="true"'
# The last HTML written for each cell, with everything it was written from (this process, any request):
# a board mostly shows what it showed a second ago, and comparing a tuple is cheaper than writing a cell.
_WRITTEN = {}
_WRITTEN_LIMIT = 100_000


class CellWriter:
    """Writes the cells of one board for one request (the user's time zone, URLs reversed once)."""

    def __init__(self, board):
        self.board = board
        self.zone = timezone.get_current_timezone()
        self.zone_name = escape(timezone.get_current_timezone_name())
        self._zones, self._escaped = {}, {}
        self._deployment_url = reverse("deployment_detail", args=[_ID_PLACEHOLDER]).split(str(_ID_PLACEHOLDER))

    def _column(self, env):
        """(environment id, the start and the end of its cells' health URL around the service name)."""
        url = escape(reverse("service_health", args=[env.slug, _PLACEHOLDER])).split(_PLACEHOLDER)
        return env.pk, url[0], url[1]

    def _deployment(self, pk):
        return f"{self._deployment_url[0]}{pk}{self._deployment_url[1]}"

    def _time(self, epoch):
        """``<time>`` of whole seconds since the epoch, in the user's zone: "2026-11-30 15:12:00 CET"."""
        if epoch is None:
            return '<span class="muted">—</span>'
        bucket = epoch // 900  # every zone's offset changes on a quarter hour at the earliest
        zone = self._zones.get(bucket)
        if zone is None:
            local = datetime.fromtimestamp(bucket * 900, self.zone)
            offset = int(local.utcoffset().total_seconds())
            sign, minutes = ("-" if offset < 0 else "+"), abs(offset) // 60
            zone = self._zones[bucket] = (offset, f"{sign}{minutes // 60:02d}:{minutes % 60:02d}", escape(local.tzname() or ""))
        offset, iso_offset, abbreviation = zone
        wall = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch + offset))
        return f'<time datetime="{wall}{iso_offset}" title="{self.zone_name}">{wall[:10]} {wall[11:]} {abbreviation}</time>'

    def _text(self, value):
        """Escaped text, once per distinct value (releases and reasons repeat across cells)."""
        text = self._escaped.get(value)
        if text is None:
            text = self._escaped[value] = escape(value)
        return text

    def cell(self, column, service_pk, name, oob=False):
        """One cell: ``<div id="cell-<env>-<service>" class="cell cell-<status>">`` (``name``: the service's, escaped)."""
        key = (column[0], service_pk)
        health, mark = self.board.cells.get(key), self.board.marks.get(key)
        inputs = (health, mark, bool(health) and health[6] in self.board.auto, column, name, self.zone_name, oob)
        written = _WRITTEN.get(key)
        if written is not None and written[0] == inputs:
            return written[1]
        html = self._write(column, service_pk, name, health, mark, oob)
        if len(_WRITTEN) >= _WRITTEN_LIMIT:
            _WRITTEN.clear()
        _WRITTEN[key] = (inputs, html)
        return html

    def _write(self, column, service_pk, name, health, mark, oob):
        env_pk, url_start, url_end = column
        dom_id = f"cell-{env_pk}-{service_pk}"
        status = health[2] if health else ("" if mark is None else "pending")
        parts = [f'<div id="{dom_id}" class="cell cell-{status}"{OOB if oob else ""}>' if status else
                 f'<div id="{dom_id}" class="cell"{OOB if oob else ""}>']
        if health:
            _env, _svc, status, reason, since, color, deployment_id, kind, release = health
            text = self._text
            parts.append(f'<a class="cell-link" href="{url_start}{name}{url_end}" aria-describedby="{dom_id}-reason">'
                         f'<span class="cell-release">{text(release or "—")}</span> '
                         f'<span class="badge health health-{status}">{status}</span></a>')
            if color:
                parts.append(f' <span class="badge color-{text(color)}" title="live colour">{text(color)}</span>')
            if deployment_id and kind == "rollback":
                auto = " (auto)" if deployment_id in self.board.auto else ""
                parts.append(f' <a class="badge rolled-back" href="{self._deployment(deployment_id)}">rolled back{auto}</a>')
            parts.append(f' <span class="cell-reason" id="{dom_id}-reason" role="tooltip">{text(reason or status)} · since '
                         f'{self._time(since)}</span>')
        if mark:
            pk, state = mark
            label = "deploying" if state == "running" else state.replace("_approval", "")
            parts.append(f' <a class="badge pending-mark" href="{self._deployment(pk)}" title="deployment #{pk} '
                         f'{state.replace("_", " ")}">{label}</a>')
        elif not health:
            parts.append('<span class="muted" aria-label="not deployed">·</span>')
        parts.append("</div>")
        return "".join(parts)

    def body(self):
        """The table's rows: ``<tr><th scope="row">service</th><td>cell</td>...</tr>`` for every row."""
        service_url = reverse("service_detail", args=[_PLACEHOLDER]).split(_PLACEHOLDER)
        columns = [self._column(env) for env in self.board.environments]
        cell = self.cell
        out = []
        for service in self.board.services:
            pk, name = service.pk, escape(service.name)
            out.append(f'<tr><th scope="row"><a href="{service_url[0]}{name}{service_url[1]}">{name}</a></th>')
            out.extend(f"<td>{cell(column, pk, name)}</td>" for column in columns)
            out.append("</tr>\n")
        return mark_safe("".join(out))  # noqa: S308  # nosec B308 B703  # every value written above went through escape()

    def cells(self, keys):
        """The cells with these (environment id, service id) keys, as out-of-band swaps for an update poll."""
        columns = {e.pk: self._column(e) for e in self.board.environments}
        names = {s.pk: escape(s.name) for s in self.board.services}
        return mark_safe("".join(self.cell(columns[e], s, names[s], oob=True)  # noqa: S308  # nosec B308 B703  # escaped in cell()
                                 for e, s in keys if e in columns and s in names))
