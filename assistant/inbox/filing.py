"""Learned filing: which of the user's own folders a new message belongs in, learned from where they filed mail.

The folders come from the import (a maildir folder, an mbox file's name, Gmail labels): every copy of a message
adds its folder to ``labels`` as ``folder:NAME``. Views and system folders that say nothing about the user's
choice (Sent, All Mail, Lotus Notes' "all documents" and "discussion threads" views, Drafts, Spam) are left out.

The classifier is scikit-learn's logistic regression on two sparse inputs: TF-IDF of the subject and the words,
and "who" tokens (sender, sender's domain, each recipient, the list, automated, attachments). It trains in
about a second on a few thousand messages and classifies ten thousand in well under a second, so no model
call is made per message. Sentence embeddings (the shipped MiniLM) were tried as a third input and left
out: they moved the Enron holdout by a few messages at most, for minutes of embedding per ten thousand
messages on a laptop CPU.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.mail.browse import people as stored_people

log = logging.getLogger(__name__)

FORMAT = 1
"""Version of the saved model; a saved model of another version is trained again."""

MIN_PER_FOLDER = 3
"""A folder with fewer filed messages is not suggested: there is too little to learn it from."""

UNSURE_BELOW = 0.5
"""A top suggestion less likely than this is shown as "not sure"."""

TEXT_CHARS = 3000
"""Words beyond this many characters of a message do not change where it belongs, and cost time."""

# Folder and label names that are views or system places, not a place the user chose (compared lower-cased,
# with separators folded to "_"): sent mail, everything-views, drafts, outbox, spam, and Gmail's own labels.
_NOT_FILING = {
    "sent",
    "_sent",
    "_sent_mail",
    "sent_items",
    "sent_mail",
    "sent_messages",
    "gesendet",
    "envoyés",
    "enviados",
    "all_documents",
    "discussion_threads",
    "notes_inbox",
    "all_mail",
    "[gmail]/all_mail",
    "archived",
    "drafts",
    "draft",
    "outbox",
    "templates",
    "spam",
    "junk",
    "junk_e-mail",
    "bulk_mail",
    "important",
    "starred",
    "opened",
    "unread",
    "chat",
    "chats",
    "mbox",
    "mail",
    "messages",
}
_SYSTEM_PREFIXES = ("category_", "category ", "[gmail]/", "[google_mail]/")


def _norm(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def is_filing_folder(name: str) -> bool:
    """Whether ``name`` is a place the user files mail in (not a view, a sent folder or a system label)."""
    key = _norm(name)
    if not key or key in _NOT_FILING or key.startswith(_SYSTEM_PREFIXES):
        return False
    return not any(part in _NOT_FILING and part.startswith("sent") for part in key.split("/"))


def user_folders(folder: str | None, labels: str | None) -> list[str]:
    """The places the user filed one stored message in, in a stable order (its folder first)."""
    names = [folder or ""]
    for label in json.loads(labels or "[]"):
        names.append(label[7:] if label.startswith("folder:") else label)
    seen: dict[str, str] = {}
    for name in names:
        if is_filing_folder(name) and _norm(name) not in seen:
            seen[_norm(name)] = name
    return list(seen.values())


def target_folder(folder: str | None, labels: str | None) -> str | None:
    """The one folder a filed message teaches: the most specific place it is in.

    A message both in the inbox and in another folder was filed there (the inbox copy is where it arrived); a
    deleted copy next to a kept one counts as kept."""
    places = user_folders(folder, labels)
    if not places:
        return None
    kept = [p for p in places if _norm(p) not in {"inbox", "deleted_items", "trash", "deleted", "bin"}]
    if kept:
        return kept[0]
    inbox = [p for p in places if _norm(p) == "inbox"]
    return inbox[0] if inbox else places[0]


def text_of(row: dict[str, Any]) -> str:
    return f"{row.get('subject') or ''}\n{(row.get('body') or '')[:TEXT_CHARS]}"


def who_of(row: dict[str, Any]) -> str:
    """The sender, recipients, list and kind of a message as tokens (no spaces inside one)."""
    sender = (row.get("from_addr") or "").lower()
    tokens = [f"from:{sender}", f"fromdomain:{sender.rpartition('@')[2]}"]
    for key, tag in (("to_json", "to"), ("cc_json", "cc")):
        people = stored_people(row.get(key))
        tokens += [f"{tag}:{addr.lower()}" for _name, addr in people if addr]
        tokens.append(f"{tag}count:{min(len(people), 5)}")
    if row.get("list_id"):
        tokens.append(f"list:{row['list_id'].lower()}")
    if row.get("automated"):
        tokens.append("automated")
    if row.get("attachments") not in (None, "", "[]"):
        tokens.append("attachments")
    if row.get("is_forward"):
        tokens.append("forward")
    return " ".join(t.replace(" ", "_") for t in tokens)


@dataclass(frozen=True)
class Suggestion:
    """Where a message might belong: up to three folders with their probability, best first."""

    folders: tuple[tuple[str, float], ...]

    @property
    def sure(self) -> bool:
        return bool(self.folders) and self.folders[0][1] >= UNSURE_BELOW

    @property
    def folder(self) -> str | None:
        """The suggested folder, or None when not sure."""
        return self.folders[0][0] if self.sure else None

    def to_json(self) -> dict[str, Any]:
        return {"folder": self.folder, "sure": self.sure,
                "top": [{"folder": f, "p": round(p, 3)} for f, p in self.folders]}  # fmt: skip


@dataclass
class FilingModel:
    """A trained filing classifier and what it was trained on (to know when to train again)."""

    pipeline: Any
    folders: list[str]
    trained_on: int
    fingerprint: str
    counts: dict[str, int] = field(default_factory=dict)
    format: int = FORMAT

    def suggest(self, rows: Sequence[dict[str, Any]], top: int = 3) -> list[Suggestion]:
        if not rows:
            return []
        probs = self.pipeline.predict_proba(_frame(rows))
        classes = list(self.pipeline.classes_)
        out = []
        for row_probs in probs:
            best = sorted(range(len(classes)), key=lambda i: -row_probs[i])[:top]
            out.append(Suggestion(tuple((str(classes[i]), float(row_probs[i])) for i in best)))
        return out


class NotEnoughFiled(Exception):
    """Too few filed messages (or a single folder) to learn filing from."""


def _frame(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """Each message as (words, who): what the pipeline's two inputs pick from."""
    return [(text_of(r), who_of(r)) for r in rows]


def _texts(data: Sequence[tuple[str, str]]) -> list[str]:
    return [text for text, _who in data]


def _whos(data: Sequence[tuple[str, str]]) -> list[str]:
    return [who for _text, who in data]


def make_pipeline(C: float = 10.0, min_df: int = 2) -> Any:
    """TF-IDF of the words plus "who" tokens into logistic regression (scikit-learn's defaults otherwise)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.preprocessing import FunctionTransformer

    features = FeatureUnion([
        ("text", Pipeline([("pick", FunctionTransformer(_texts)),
                           ("tfidf", TfidfVectorizer(sublinear_tf=True, min_df=min_df, max_features=50_000))])),
        ("who", Pipeline([("pick", FunctionTransformer(_whos)),
                          ("tfidf", TfidfVectorizer(token_pattern=r"\S+", lowercase=False, sublinear_tf=True))])),
    ])  # fmt: skip
    return Pipeline([("features", features), ("classify", LogisticRegression(C=C, max_iter=3000))])


def baseline_pipeline() -> Any:
    """The plain text classifier filing is measured against: TF-IDF of the words into logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    return Pipeline([("pick", FunctionTransformer(_texts)),
                     ("tfidf", TfidfVectorizer(sublinear_tf=True, min_df=2, max_features=50_000)),
                     ("classify", LogisticRegression(max_iter=3000))])  # fmt: skip


def labelled(rows: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Received messages that were filed somewhere, with the folder each teaches; folders with too few dropped."""
    pairs = []
    for row in rows:
        if row.get("sent_by_me"):
            continue
        target = target_folder(row.get("folder"), row.get("labels"))
        if target:
            pairs.append((row, target))
    counts = Counter(t for _, t in pairs)
    kept = [(r, t) for r, t in pairs if counts[t] >= MIN_PER_FOLDER]
    return [r for r, _ in kept], [t for _, t in kept]


def fit(rows: Sequence[dict[str, Any]], folders: Sequence[str], fingerprint: str = "", C: float = 10.0) -> FilingModel:
    if len(set(folders)) < 2:
        raise NotEnoughFiled(
            "Filing suggestions need mail filed in at least two folders "
            f"(with {MIN_PER_FOLDER} or more messages each); this archive has "
            f"{len(set(folders))}. Import the folders you file mail in (a maildir, or one mbox per folder)."
        )
    pipeline = make_pipeline(C, min_df=2 if len(rows) >= 100 else 1)
    pipeline.fit(_frame(rows), list(folders))
    return FilingModel(pipeline, sorted(set(folders)), len(rows), fingerprint, dict(Counter(folders)))


COLUMNS = ("id", "subject", "body", "from_addr", "to_json", "cc_json", "list_id", "automated", "attachments",
           "is_forward", "folder", "labels", "sent_by_me", "date")  # fmt: skip


def fingerprint(db: Any) -> str:
    """Changes when stored mail is added, removed or re-filed (what a saved model was trained on)."""
    row = db.execute("SELECT COUNT(*), ifnull(MAX(id), 0), ifnull(SUM(length(labels)), 0) FROM messages").fetchone()
    return f"{FORMAT}:{row[0]}:{row[1]}:{row[2]}"


def model_path(root: Path) -> Path:
    return Path(root) / "inbox" / "filing.pickle"


def load_or_train(db: Any, root: Path) -> FilingModel:
    """The filing model for the store in data folder ``root``, trained again when its mail changed.

    The model is kept in the data folder (a pickle Mailvoice itself wrote; it holds word weights learned from
    the user's mail, so it is as private as the database and removed by ``forget``).

    Raises:
        NotEnoughFiled: the archive has no filing to learn from.
    """
    path = model_path(root)
    now = fingerprint(db)
    if path.is_file():
        try:
            with path.open("rb") as f:
                saved = pickle.load(f)
            if isinstance(saved, FilingModel) and saved.format == FORMAT and saved.fingerprint == now:
                return saved
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError) as exc:
            log.info("the saved filing model cannot be read (%s): training again", type(exc).__name__)
    cols = ", ".join(COLUMNS)
    rows = [dict(zip(COLUMNS, r, strict=True)) for r in db.execute(f"SELECT {cols} FROM messages ORDER BY id")]
    train_rows, folders = labelled(rows)
    model = fit(train_rows, folders, now)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        pickle.dump(model, f)
    tmp.replace(path)  # a crash mid-write leaves the old model, never half a file
    return model
