"""The evaluation report: mail text is escaped, the chart is an embedded PNG, the JSON holds everything."""

from __future__ import annotations

import base64
import json
import re

from trainer.evaluation.report import render_html, write_report
from trainer.evaluation.types import EvalRow, RunConfig

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quotes" </pre></div>'


def row(label_adapter=None, examples=True):
    config = RunConfig("/models/m.gguf", label_adapter, None, examples, 0)
    metrics = {"n": 1, "bleu": 0.25, "sacrebleu": 0.2, "chrf": 0.4, "rouge_l": 0.3, "mauve": None,
               "length_ratio": 1.1, "verbatim_overlap": 1.0,
               "intervals": {"bleu": [0.1, 0.4], "mauve": None}}  # fmt: skip
    item = {"pair_id": 7, "instruction": "Say " + HOSTILE, "context": "From: Eve\n\n" + HOSTILE,
            "real": "Hi,\n" + HOSTILE, "draft": "Draft " + HOSTILE, "examples": [], "rouge_l": 0.3,
            "copied": HOSTILE}  # fmt: skip
    return EvalRow(config, [item], metrics)


def test_mail_text_is_escaped_everywhere(tmp_path):
    json_path, html_path = write_report(tmp_path, [row(), row("mine", False)], {"kind": "ablations", "n": 1,
                                        "notices": [HOSTILE]})  # fmt: skip
    page = html_path.read_text(encoding="utf-8")
    assert "<script" not in page and "onerror=alert" not in page.replace("onerror=alert(1)&gt;", "")
    assert "<img src=x" not in page and page.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") >= 6
    assert "&lt;/pre&gt;&lt;/div&gt;" in page  # cannot close our own markup
    assert "Content-Security-Policy" in page  # and nothing would run even if something slipped through
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["rows"][0]["items"][0]["real"] == "Hi,\n" + HOSTILE  # the JSON keeps the text as it is


def test_chart_table_and_drafts_side_by_side(tmp_path):
    page = render_html({"kind": "ablations", "n": 1, "rows": [
        {"label": r.label, "metrics": r.metrics, "items": r.items} for r in (row(), row("mine", False))]})  # fmt: skip
    png = base64.b64decode(re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page).group(1))
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    assert "0.250" in page and "[0.100, 0.400]" in page and "–" in page  # MAUVE missing shows as a dash
    assert page.count('class="box real"') == 1 and page.count('<div class="box">') == 2  # one real, two drafts
    assert ">base + examples<" in page and ">mine<" in page and "Repeats a training email" in page
