"""The evaluation report: ``report.json`` (everything) and ``report.html`` (one self-contained page).

The page holds a bar chart of the configurations (matplotlib, drawn off-screen with the Agg canvas and
embedded as a base64 PNG), the metrics table with their 95% intervals, and every draft beside the real
email it stands in for. All mail text is HTML-escaped: emails carry markup, and a report must never run it.
Both files are written private (0600) into the data folder, like everything Mailvoice keeps.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainer.evaluation.types import EvalRow

CHARTED = ("bleu", "sacrebleu", "chrf", "rouge_l", "mauve", "verbatim_overlap")  # all on 0-1
COLUMNS = ("bleu", "sacrebleu", "chrf", "rouge_l", "mauve", "length_ratio", "verbatim_overlap")
COLOURS = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#9d755d", "#e45756")


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def row_json(row: EvalRow) -> dict[str, Any]:
    return {
        "label": row.label,
        "config": row.config.to_json(),
        "metrics": row.metrics,
        "generated": row.generated,
        "cached": row.cached,
        "skipped": row.skipped,
        "items": row.items,
    }


def write_report(folder: Path, rows: Sequence[EvalRow], summary: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``folder``; return their paths."""
    data = {**summary, "rows": [row_json(r) for r in rows]}
    json_path, html_path = folder / "report.json", folder / "report.html"
    _write_private(json_path, json.dumps(data, ensure_ascii=False, indent=1, default=str).encode("utf-8"))
    _write_private(html_path, render_html(data).encode("utf-8"))
    return json_path, html_path


# --- chart ----------------------------------------------------------------------------------------------------


def chart_png(rows: Sequence[dict[str, Any]]) -> bytes:
    """A grouped bar chart: one group per metric, one bar per configuration, 95% intervals as error bars."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global state, safe in a worker thread

    fig = Figure(figsize=(9, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / max(len(rows), 1)
    for i, row in enumerate(rows):
        metrics = row["metrics"]
        values = [metrics.get(m) or 0.0 for m in CHARTED]
        low, high = [], []
        for m, v in zip(CHARTED, values, strict=True):
            ci = (metrics.get("intervals") or {}).get(m)
            low.append(max(v - ci[0], 0.0) if ci else 0.0)
            high.append(max(ci[1] - v, 0.0) if ci else 0.0)
        xs = [x + (i - (len(rows) - 1) / 2) * width for x in range(len(CHARTED))]
        ax.bar(xs, values, width, yerr=[low, high], capsize=2, label=row["label"], color=COLOURS[i % len(COLOURS)])
    ax.set_xticks(range(len(CHARTED)), [m.replace("_", " ") for m in CHARTED])
    ax.set_ylim(0, 1)
    ax.set_ylabel("score (0-1)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


# --- page ------------------------------------------------------------------------------------------------------

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;
vertical-align:top}th{background:#f3f3f3}td.num{text-align:right;white-space:nowrap}.ci{color:#777;font-size:12px}
pre{white-space:pre-wrap;word-wrap:break-word;margin:0;font:13px/1.4 ui-monospace,monospace}
.pair{border-top:2px solid #ddd;margin-top:1.5em;padding-top:.5em}.grid{display:grid;gap:8px;
grid-template-columns:repeat(auto-fit,minmax(260px,1fr))}.box{background:#fafafa;border:1px solid #e3e3e3;
padding:8px}.real{background:#f1f7ff}.copied{color:#b00020}.notice{background:#fff6dd;padding:6px 10px}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _number(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else _e(value)


def _table(rows: Sequence[dict[str, Any]]) -> str:
    head = "".join(f"<th>{_e(c.replace('_', ' '))}</th>" for c in COLUMNS)
    out = [f"<table><tr><th>configuration</th><th>n</th>{head}</tr>"]
    for row in rows:
        m = row["metrics"]
        cells = []
        for c in COLUMNS:
            ci = (m.get("intervals") or {}).get(c)
            extra = f'<br><span class="ci">[{ci[0]:.3f}, {ci[1]:.3f}]</span>' if ci else ""
            cells.append(f'<td class="num">{_number(m.get(c))}{extra}</td>')
        out.append(f"<tr><td>{_e(row['label'])}</td><td class=\"num\">{_e(m.get('n'))}</td>{''.join(cells)}</tr>")
    out.append("</table>")
    return "".join(out)


def _pairs(rows: Sequence[dict[str, Any]]) -> str:
    by_pair: dict[int, dict[str, Any]] = {}
    for row in rows:
        for item in row["items"]:
            entry = by_pair.setdefault(item["pair_id"], {"item": item, "drafts": []})
            entry["drafts"].append((row["label"], item))
    out = []
    for pair_id, entry in by_pair.items():
        item = entry["item"]
        boxes = [f'<div class="box real"><b>Real email</b><pre>{_e(item["real"])}</pre></div>']
        for label, d in entry["drafts"]:
            copied = (f'<p class="copied">Repeats a training email: “{_e(d["copied"])}”</p>'
                      if d.get("copied") else "")  # fmt: skip
            score = f' <span class="ci">ROUGE-L {d["rouge_l"]:.3f}</span>' if "rouge_l" in d else ""
            boxes.append(f'<div class="box"><b>{_e(label)}</b>{score}<pre>{_e(d["draft"])}</pre>{copied}</div>')
        context = (f"<details><summary>The email answered</summary><pre>{_e(item['context'])}</pre></details>"
                   if item.get("context") else "")  # fmt: skip
        out.append(
            f'<div class="pair"><p><b>Pair {_e(pair_id)}</b>: {_e(item["instruction"])}</p>{context}'
            f'<div class="grid">{"".join(boxes)}</div></div>'
        )
    return "".join(out)


def _edits(rows: Sequence[dict[str, Any]]) -> str:
    """The held-out corrections (the user's newest edits of drafts): how close each configuration's drafts
    come to the text the user kept."""
    scored = [(row["label"], row["metrics"]["edits"]) for row in rows if row["metrics"].get("edits")]
    if not scored:
        return ""
    cells = "".join(f'<tr><td>{_e(label)}</td><td class="num">{_e(m["n"])}</td><td class="num">{_number(m["bleu"])}'
                    f'</td><td class="num">{_number(m["chrf"])}</td></tr>' for label, m in scored)  # fmt: skip
    return ("<h2>Your edits</h2><p>Drafts for the instructions of your newest edits of drafts (held out of "
            "training), against the text you kept.</p><table><tr><th>configuration</th><th>n</th><th>bleu</th>"
            f"<th>chrf</th></tr>{cells}</table>")  # fmt: skip


def render_html(data: dict[str, Any]) -> str:
    rows = data["rows"]
    png = base64.b64encode(chart_png(rows)).decode("ascii")
    notices = "".join(f'<p class="notice">{_e(n)}</p>' for n in data.get("notices", []))
    title = "Mailvoice evaluation" + (" — ablations" if data.get("kind") == "ablations" else "")
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        f"style-src 'unsafe-inline'\"><style>{_STYLE}</style></head><body>"
        f"<h1>{_e(title)}</h1><p>{_e(data.get('created_at'))} · {_e(data.get('n'))} validation pairs · seed "
        f"{_e(data.get('seed'))} · {_e(data.get('training_emails'))} training emails checked for copies · "
        f"{_e(data.get('held_out_messages'))} messages kept out of the style examples</p>{notices}"
        f'<h2>Scores</h2><img alt="bar chart of the scores" src="data:image/png;base64,{png}">'
        f"{_table(rows)}<p class=\"ci\">All scores 0-1 (higher is closer to the real emails) except length ratio "
        "(draft words / real words) and verbatim overlap (share of drafts repeating 50+ characters of a training "
        "email: lower is better). Brackets: 95% bootstrap intervals.</p>"
        f"{_edits(rows)}<h2>Drafts beside the real emails</h2>{_pairs(rows)}</body></html>"
    )
