"""The loss chart of the Train page: training loss per step and validation loss at each evaluation, live for
the run in progress, or from the log of a stopped run or of a trained adapter."""

from __future__ import annotations

import math
from collections.abc import Iterable

from PySide6.QtCharts import QChart, QChartView, QLineSeries, QValueAxis
from PySide6.QtCore import QMargins, QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPen

from trainer.events import Eval, Event, Start, Step

MARKED_UP_TO = 60  # training points drawn as dots too while there are this few: one step alone has no line


class LossChart(QChartView):
    """Two line series over optimizer steps; the x-axis spans the run's steps, the y-axis fits the losses.
    No signals.

    A resumed run trains again from its last checkpoint, so a point at a step the series already has (or one
    before it) first drops everything from that step on: the curve continues instead of doubling back.
    """

    def __init__(self, parent=None):
        chart = QChart()
        chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
        chart.setMargins(QMargins(4, 4, 4, 4))
        super().__init__(chart, parent)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setMinimumHeight(200)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.train = QLineSeries(name="training loss")
        self.eval = QLineSeries(name="validation loss")
        self.train.setPen(QPen(QColor("#2f6fb3"), 1.5))
        self.train.setMarkerSize(5.0)
        self.eval.setPen(QPen(QColor("#d9822b"), 2.0))
        self.eval.setMarkerSize(9.0)  # a few evaluations in a run: each one stands out
        self.eval.setPointsVisible(True)
        self.x_axis = QValueAxis()
        self.x_axis.setTitleText("step")
        self.x_axis.setLabelFormat("%d")
        self.x_axis.setTickType(QValueAxis.TickType.TicksDynamic)
        self.x_axis.setTickAnchor(0.0)
        self.y_axis = QValueAxis()
        self.y_axis.setLabelFormat("%.2f")
        self.y_axis.setTickType(QValueAxis.TickType.TicksDynamic)  # ticks at round values (1.0, 1.5), not at
        self.y_axis.setTickAnchor(0.0)  # fifths of whatever the range is (0.99, 1.49, 1.99)
        chart.addAxis(self.x_axis, Qt.AlignmentFlag.AlignBottom)
        chart.addAxis(self.y_axis, Qt.AlignmentFlag.AlignLeft)
        for series in (self.train, self.eval):
            chart.addSeries(series)
            series.attachAxis(self.x_axis)
            series.attachAxis(self.y_axis)
        self.total_steps = 0
        self.clear()

    def clear(self, title: str = "") -> None:
        """Empty the chart for another run (its steps, range and title start afresh)."""
        self.train.clear()
        self.eval.clear()
        self.train.setPointsVisible(True)
        self.total_steps = 0
        self.chart().setTitle(title)
        self._bounds: tuple[float, float, float] | None = None
        self._rescale()

    def show_log(self, events: Iterable[Event], title: str = "") -> None:
        """Draw a finished or stopped run from its logged events (``metrics.jsonl``, as
        :meth:`trainer.metrics.MetricsLog.read` gives them)."""
        self.clear(title)
        for event in events:
            self.add_event(event)

    def set_total_steps(self, total: int) -> None:
        self.total_steps = max(0, int(total))
        self._rescale()

    def add_train(self, step: int, loss: float) -> None:
        self._add(self.train, step, loss)
        marked = self.train.count() <= MARKED_UP_TO
        if marked != self.train.pointsVisible():
            self.train.setPointsVisible(marked)

    def add_eval(self, step: int, loss: float) -> None:
        self._add(self.eval, step, loss)

    def add_event(self, event: Event) -> None:
        """Take what a training event says about the curve (``Start``, ``Step``, ``Eval``); ignore the rest."""
        if isinstance(event, (Start, Step)) and event.total_steps:
            self.total_steps = int(event.total_steps)
        match event:
            case Step(step=step, loss=loss) if loss is not None:
                self.add_train(int(step), float(loss))
            case Eval(step=step, eval_loss=loss) if loss is not None:
                self.add_eval(int(step), float(loss))
            case Start():
                self._rescale()

    def points(self, which: str = "train") -> list[tuple[float, float]]:
        series = self.train if which == "train" else self.eval
        return [(p.x(), p.y()) for p in series.points()]

    def _add(self, series: QLineSeries, step: int, value: float) -> None:
        if not math.isfinite(value):
            return  # a diverged step: the status line says so, the axis must not stretch to infinity
        if series.count() and series.at(series.count() - 1).x() >= step:
            series.replace([p for p in series.points() if p.x() < step])
            self._bounds = None  # rare (a resume): measured again from the points
        series.append(QPointF(step, value))
        if self._bounds is not None:  # kept up to date point by point: a long run has thousands of steps
            low, high, last = self._bounds
            self._bounds = (min(low, value), max(high, value), max(last, step))
        self._rescale()

    def _rescale(self) -> None:
        if self._bounds is None:
            pts = [p for s in (self.train, self.eval) for p in s.points()]
            self._bounds = (min((p.y() for p in pts), default=math.inf), max((p.y() for p in pts), default=-math.inf),
                            max((p.x() for p in pts), default=0))  # fmt: skip
        low, high, last = self._bounds
        right = max(self.total_steps, last, 1)  # the whole run from its first step: the curve fills it as it goes
        pad = max(0.5, (right - 1) * 0.02)  # the first and last points clear of the frame, their dots whole
        self.x_axis.setRange(1 - pad, right + pad)
        self.x_axis.setTickInterval(max(1.0, _nice_step(right / 6)))
        if low <= high:
            pad = max((high - low) * 0.08, 0.05)
            self.y_axis.setRange(max(0.0, low - pad), high + pad)
            self.y_axis.setTickInterval(_nice_step((high + pad - max(0.0, low - pad)) / 5))
        else:
            self.y_axis.setRange(0, 1)
            self.y_axis.setTickInterval(0.25)


def _nice_step(raw: float) -> float:
    """The round interval (1, 2, 2.5 or 5 times a power of ten) at or above ``raw``."""
    if raw <= 0:
        return 0.1
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))  # 0.1 / 5 is 0.0200...04
