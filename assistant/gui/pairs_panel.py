"""The training set on the Train page: counts, the pairs table (search, edit an instruction, exclude/include)
and building pairs from sent mail, through the same core as ``mailvoice pairs``.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QEvent, QModelIndex, QObject, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from assistant.durations import format_duration
from assistant.errors import MailvoiceError
from assistant.gui import tasks
from assistant.workspace import Workspace
from trainer.jobs import estimate_tokens
from trainer.pairs import DEFAULT_LIMIT, BuildProgress, Pair, build_pairs, counts, edit_instruction, list_pairs
from trainer.pairs import set_status as set_pair_status

COLUMNS = ("ID", "Split", "Status", "Instruction", "Your email")
INSTRUCTION = 3
_ROOT = QModelIndex()  # a table has no parents: every row hangs off the invisible root
BackendFactory = Callable[[Any], Any]  # db -> a drafting Backend that writes the instructions


def _one_line(text: str, width: int = 120) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def fallback_note(pairs: list[Pair]) -> str:
    """How many instructions are stand-ins made without the model, and what would make them better ("" if none).

    A built pair is flagged ``fallback`` when every model answer failed the checks; one the person edited is
    theirs (source ``edited``) and no longer counts.
    """
    built = [p for p in pairs if p.source == "built" and p.status == "ok"]
    stand_ins = [p for p in built if "fallback" in p.flags]
    if not stand_ins:
        return ""
    models = sorted({html.escape(p.model.split(":")[0]) for p in stand_ins if p.model})
    by = f" ({', '.join(models)})" if models else ""
    return (
        f"<br><b>{len(stand_ins):,}</b> of the {len(built):,} instructions the model{by} wrote are stand-ins made "
        "from the email's own sentences, because its answers failed the checks (search "
        "“fallback” to see them). A larger labelling model writes better ones: build again with it "
        "(<i>mailvoice pairs build --model LARGER.gguf</i>), or edit them here."
    )


class PairsModel(QAbstractTableModel):
    """The pairs as rows; the instruction column is editable and each edit goes through ``edit(id, text)``,
    which returns the stored pair or raises :class:`MailvoiceError` (then ``rejected(str)`` is emitted)."""

    rejected = Signal(str)

    def __init__(self, edit: Callable[[int, str], Pair]):
        super().__init__()
        self.pairs: list[Pair] = []
        self.cells: list[tuple[Any, ...]] = []  # what each row shows: made once, not at every paint or search
        self.haystacks: list[str] = []  # each row's searchable text, case-folded
        self.edit = edit

    def set_pairs(self, pairs: list[Pair]) -> None:
        self.beginResetModel()
        self.pairs = pairs
        self.cells = [self._cells(p) for p in pairs]
        self.haystacks = [self._haystack(p) for p in pairs]
        self.endResetModel()

    @staticmethod
    def _cells(p: Pair) -> tuple[Any, ...]:
        return (p.id, p.split, p.status, _one_line(p.instruction), _one_line(p.output))

    @staticmethod
    def _haystack(p: Pair) -> str:
        return f"{p.id} {p.split} {p.status} {' '.join(p.flags)} {p.instruction} {p.output}".casefold()

    def replace(self, pair: Pair) -> None:
        for row, old in enumerate(self.pairs):
            if old.id == pair.id:
                self.pairs[row], self.cells[row], self.haystacks[row] = pair, self._cells(pair), self._haystack(pair)
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
                return

    def rowCount(self, parent=_ROOT) -> int:  # noqa: N802 - Qt's names
        return 0 if parent.isValid() else len(self.pairs)

    def columnCount(self, parent=_ROOT) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def flags(self, index):
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsEditable if index.column() == INSTRUCTION else base

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        p = self.pairs[index.row()]
        col = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if col == INSTRUCTION and role == Qt.ItemDataRole.EditRole:
                return p.instruction
            return self.cells[index.row()][col]
        if role == Qt.ItemDataRole.ToolTipRole and col >= INSTRUCTION:
            return p.instruction if col == INSTRUCTION else p.output[:2000]
        if role == Qt.ItemDataRole.ForegroundRole and p.status == "excluded":
            return QColor("#8a8a8a")
        if role == Qt.ItemDataRole.UserRole:
            return p
        return None

    def setData(self, index, value, role=Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        if index.column() != INSTRUCTION or role != Qt.ItemDataRole.EditRole:
            return False
        pair = self.pairs[index.row()]
        if " ".join(str(value).split()) == pair.instruction:
            return False
        try:
            self.replace(self.edit(pair.id, str(value)))
        except MailvoiceError as exc:
            self.rejected.emit(str(exc))
            return False
        return True


class PairsFilter(QSortFilterProxyModel):
    """Rows whose text contains the search, case-insensitively (a substring test per row, not per cell)."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.needle = ""

    def set_search(self, text: str) -> None:
        self.beginFilterChange()
        self.needle = " ".join(text.split()).casefold()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, row: int, parent) -> bool:  # noqa: N802 - Qt's name
        return not self.needle or self.needle in self.sourceModel().haystacks[row]


class PairsPanel(QWidget):
    """Counts, search, table and build. Signals: changed() after any change to the pairs; message(str) for the
    page's status line (a failed edit, a finished build)."""

    changed = Signal()
    message = Signal(str)

    def __init__(self, ws: Workspace | str, backend_factory: BackendFactory | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = Workspace.of(ws)
        self.backend_factory = backend_factory or _llama_backend
        self.thread = None
        self.worker: tasks.CallWorker | None = None
        self.stats = QLabel()
        self.stats.setWordWrap(True)
        # Qt's setData answers at once: an edit (one row) waits for the writer, in order with the other writes
        self.model = PairsModel(lambda pid, text: tasks.writer(self.workspace).wait_for(
            lambda db: edit_instruction(db, pid, text)))
        self.model.rejected.connect(self.message.emit)
        self.proxy = PairsFilter(self)
        self.proxy.setSourceModel(self.model)
        self.search = QLineEdit(placeholderText="Search instructions and emails (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.proxy.set_search)
        QShortcut(QKeySequence.StandardKey.Find, self, activated=self.search.setFocus)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                   | QAbstractItemView.EditTrigger.EditKeyPressed
                                   | QAbstractItemView.EditTrigger.AnyKeyPressed)  # fmt: skip
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)  # one line per pair; the full texts are in the tooltip and below
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        for col in range(INSTRUCTION):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(INSTRUCTION, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(INSTRUCTION + 1, QHeaderView.ResizeMode.Stretch)
        # The preview follows the current row, read from the signal: a mouse click makes a row current before
        # it selects it, so the selection read in this slot would still be the previous row's.
        self.table.selectionModel().currentRowChanged.connect(lambda current, _previous: self._show_current(current))
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._show_current())
        self.preview = QPlainTextEdit(readOnly=True, placeholderText="The selected pair's email (F2 edits its "
                                      "instruction).")  # fmt: skip
        self.preview.setTabChangesFocus(True)
        self.exclude_button = QPushButton("E&xclude")
        self.exclude_button.setToolTip("Leave the selected pairs out of training, or take them back (Delete).")
        self.exclude_button.clicked.connect(self.toggle_excluded)
        self.table.installEventFilter(self)  # Delete in the table excludes (or includes back) the selection
        self.limit = QSpinBox(minimum=0, maximum=1_000_000, value=DEFAULT_LIMIT, singleStep=100)
        self.limit.setSpecialValueText("all")
        self.limit.setToolTip("How many of your most useful sent emails to label (0: all of them).")
        self.build_button = QPushButton("&Build pairs from my sent mail")
        self.build_button.clicked.connect(self.build)
        self.stop_build_button = QPushButton("Stop b&uilding")
        self.stop_build_button.clicked.connect(self.stop_build)
        self.bar = QProgressBar(textVisible=False)
        self.bar.setRange(0, 1000)
        self.build_status = QLabel(wordWrap=True)
        self._layout()
        self.set_building(False)
        self.reload()

    def _layout(self) -> None:
        search_row = QHBoxLayout()
        search_row.addWidget(self.search, 1)
        search_row.addWidget(self.exclude_button)
        build_row = QHBoxLayout()
        build_row.addWidget(self.build_button)
        build_row.addWidget(QLabel("Emails:"))
        build_row.addWidget(self.limit)
        build_row.addWidget(self.stop_build_button)
        build_row.addStretch()
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.preview)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("<b>Your training set</b>"))
        layout.addWidget(self.stats)
        layout.addLayout(build_row)
        layout.addWidget(self.bar)
        layout.addWidget(self.build_status)
        layout.addLayout(search_row)
        layout.addWidget(split, 1)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if (watched is self.table and event.type() == QEvent.Type.KeyPress
                and event.matches(QKeySequence.StandardKey.Delete)):  # fmt: skip
            self.toggle_excluded()
            return True
        return super().eventFilter(watched, event)

    # --- the table ----------------------------------------------------------------------------------------

    loading = closing = False
    last_progress: BuildProgress | None = None  # of the build running now

    def reload(self) -> None:
        """Read the pairs off the GUI thread (scrubbing thousands of them takes seconds); the table is read-only
        until they arrive, so that no edit lands on a row about to be replaced."""
        if self.closing:
            return
        if self.loading:
            self._again = True
            return
        self.loading, self._again = True, False
        ws = self.workspace
        self.load_worker = tasks.CallWorker(lambda _progress, _cancel: list_pairs(ws.db))
        self.load_worker.finished.connect(self._on_loaded)
        self.load_worker.failed.connect(self._on_load_failed)
        self.table.setEnabled(False)
        self.exclude_button.setEnabled(False)
        if counts(self.workspace.db)["total"]:
            self.stats.setText("Reading your pairs…")
        self.load_thread = tasks.start(self, self.load_worker)

    def _on_loaded(self, pairs: list[Pair]) -> None:
        self.loading = False
        self.model.set_pairs(pairs)
        self.table.setEnabled(True)
        self.update_stats()
        self._show_current()
        self.changed.emit()
        if self._again:
            self.reload()

    def _on_load_failed(self, message: str) -> None:
        self.loading = False
        self.table.setEnabled(True)
        self.stats.setText(message)
        self.changed.emit()

    def update_stats(self) -> None:
        c = counts(self.workspace.db)
        if not c["total"]:
            self.stats.setText(
                "No pairs yet. Build them from your sent mail: Mailvoice writes the short instruction that "
                "would have produced each email, and learns your style from those pairs."
            )
            return
        tokens = estimate_tokens([p for p in self.model.pairs if p.status == "ok"])
        self.stats.setText(
            f"<b>{c['train']:,}</b> pairs to train on, <b>{c['validation']:,}</b> kept apart to measure the "
            f"result, {c['excluded']:,} excluded; about {tokens:,} tokens to train on per pass."
            + fallback_note(self.model.pairs)
        )

    def selected_pairs(self) -> list[Pair]:
        rows = {self.proxy.mapToSource(i).row() for i in self.table.selectionModel().selectedRows()}
        current = self.table.currentIndex()
        if not rows and current.isValid():
            rows = {self.proxy.mapToSource(current).row()}
        return [self.model.pairs[r] for r in sorted(rows)]

    def _show_current(self, current: QModelIndex | None = None) -> None:
        """Preview the current pair (``current``: the view's new current index, as its signal gives it)."""
        chosen = self.selected_pairs()
        current = self.table.currentIndex() if current is None else current
        if not chosen and not current.isValid():
            self.preview.clear()
            self.exclude_button.setEnabled(False)
            return
        p = self.model.pairs[self.proxy.mapToSource(current).row()] if current.isValid() else chosen[-1]
        chosen = chosen or [p]
        context = f"\n\n— answering —\n{p.input}" if p.input else ""
        self.preview.setPlainText(f"{p.output}{context}")
        self.exclude_button.setEnabled(True)
        self.exclude_button.setText("&Include" if all(q.status == "excluded" for q in chosen) else "E&xclude")

    def toggle_excluded(self) -> None:
        chosen = self.selected_pairs()
        status = "ok" if chosen and all(p.status == "excluded" for p in chosen) else "excluded"
        ids = [p.id for p in chosen]
        tasks.write(self, self.workspace, lambda db: [set_pair_status(db, i, status) for i in ids],
                    self._statuses_set, self.message.emit)  # fmt: skip

    def _statuses_set(self, pairs: list[Pair]) -> None:
        for pair in pairs:
            self.model.replace(pair)
        self.update_stats()
        self._show_current()
        self.changed.emit()

    # --- building -----------------------------------------------------------------------------------------

    # A busy flag, not QThread.isRunning(): the thread quits only after the slots of its last signal ran.
    building = False

    def set_building(self, busy: bool) -> None:
        self.building = busy
        self.build_button.setEnabled(not busy)
        self.limit.setEnabled(not busy)
        self.stop_build_button.setVisible(busy)
        self.bar.setVisible(busy)

    def running(self) -> str | None:
        """What the build is doing, for a question before quitting; None when no build runs."""
        if not self.building:
            return None
        p = self.last_progress
        done = f": {p.done:,} of {p.total:,} emails labelled" if p is not None and p.phase != "start" else ""
        return f"Training pairs are being built{done}. Quitting stops it; every finished pair is kept."

    def build(self) -> None:
        if self.building:
            return
        ws, limit, factory = self.workspace, self.limit.value() or None, self.backend_factory

        def work(progress, cancel):
            db = ws.db
            return build_pairs(db, factory(db), limit=limit, progress=progress, cancel=cancel)

        self.worker = tasks.CallWorker(work)
        self.worker.progress.connect(self._on_progress)
        self.worker.finished.connect(self._on_built)
        self.worker.failed.connect(self._on_build_failed)
        self.worker.cancelled.connect(self._on_build_stopped)
        self.bar.setValue(0)
        self.last_progress = None
        self.build_status.setText("Loading the model to write instructions…")
        self.set_building(True)
        self.thread = tasks.start(self, self.worker)

    def stop_build(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.build_status.setText("Stopping after this email; every finished pair is kept…")

    def _on_progress(self, p: BuildProgress) -> None:
        self.last_progress = p
        self.bar.setValue(int(p.fraction * 1000))
        if p.phase == "start":
            text = f"{p.total:,} emails to label ({p.cached:,} already done)."
        else:
            eta = f", about {format_duration(p.eta)} left" if p.eta is not None else ""
            text = f"Labelling… {p.done:,} of {p.total:,} ({p.pairs_per_minute:,.1f} per minute){eta}"
        if p.estimate is not None and p.phase in ("start", "estimate"):
            text += f" Estimated: about {format_duration(p.estimate)} in all (from the {p.estimate_from})."
        self.build_status.setText(text)

    def _on_built(self, report) -> None:
        self.set_building(False)
        verb = "Stopped" if report.status == "cancelled" else "Done"
        more = " Build again to continue." if report.status == "cancelled" else ""
        self.build_status.setText(f"{verb}: {report.built:,} new pairs, {report.cached:,} already built.{more}")
        self.reload()

    def _on_build_failed(self, message: str) -> None:
        self.set_building(False)
        self.build_status.setText(message)
        self.reload()  # a failed build keeps every pair it finished

    def _on_build_stopped(self) -> None:
        self._on_build_failed("Stopped before a new pair was written. Build again to continue.")

    def shutdown(self, wait_ms: int = 30000) -> None:
        self.closing = True
        if self.worker is not None and self.thread is not None and self.thread.isRunning():
            self.worker.cancel()
            self.thread.quit()
            self.thread.wait(wait_ms)
        if self.thread is not None and self.thread.isFinished():
            self.building = False  # the build has ended, though its last slot, queued, will not run before the quit
        if self.loading:
            self.load_thread.quit()
            self.load_thread.wait(wait_ms)


def _llama_backend(db) -> Any:
    """llama.cpp on the chosen model, sized as ``mailvoice pairs build`` sizes it."""
    from trainer.pairs.build import labelling_backend

    return labelling_backend(db)
