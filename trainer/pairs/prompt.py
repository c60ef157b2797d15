"""The reverse-instruction prompt: ``resources/prompts/reverse_instruction.txt`` parsed, and chat messages built.

The file holds a ``# version: N`` line, comment lines, then sections: ``[system]``, pairs of ``[email]`` /
``[instruction]`` examples, ``[context]`` and ``[request]``. The messages put the fixed part (system and the
examples as earlier chat turns) first and the email last: llama.cpp keeps the KV cache of the longest common
token prefix with the previous prompt, so every email after the first pays only for its own tokens.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from assistant.drafting.backend import Messages
from assistant.mail.subjects import prompt_subject
from trainer.pairs.candidates import own_text

PROMPT_NAME = "reverse_instruction"
PROMPT_BODY_CHARS = 2500  # of the email, in the prompt: the gist is at the start; the pair keeps it all
PROMPT_CONTEXT_CHARS = 300  # of the email answered, in the prompt: enough to name what is answered
_SECTION = re.compile(r"^\[(system|email|instruction|context|request)\]\s*$")
# A signature or a list footer starts at a rule line: "-- " (the signature convention), "_____", "-----".
_RULE = re.compile(r"^[ \t]*(?:--[ \t]*|_{5,}[ \t]*|-{5,}[ \t]*)$", re.M)


@dataclass(frozen=True)
class Request:
    """What the prompt says about one email."""

    to: str  # "Priya Raman" / "Leila Haddad and Marcus Webb"
    subject: str
    body: str
    context_sender: str = ""  # who wrote the email answered ("" when it answers nothing stored)
    context_text: str = ""


@dataclass(frozen=True)
class ReversePrompt:
    name: str
    version: int
    system: str
    examples: tuple[tuple[str, str], ...]
    context_template: str
    request_template: str

    def prefix(self) -> Messages:
        """The messages every email shares: the system text and the worked examples."""
        messages = [{"role": "system", "content": self.system}]
        for email, instruction in self.examples:
            messages.append({"role": "user", "content": email})
            messages.append({"role": "assistant", "content": instruction})
        return messages

    def request_text(self, request: Request, body_chars: int = PROMPT_BODY_CHARS) -> str:
        context = ""
        if request.context_text.strip():
            text = " ".join(cut(email_text(request.context_text), PROMPT_CONTEXT_CHARS).split()).replace('"', "'")
            values = {"sender": request.context_sender or "someone", "text": text}
            context = self.context_template.format_map(values) + "\n"
        return self.request_template.format_map(
            {
                "context": context,
                "to": request.to or "someone",
                "subject": prompt_subject(request.subject) or "(no subject)",
                "body": cut(email_text(request.body), body_chars),
            }
        )

    def messages(
        self,
        request: Request,
        count_tokens: Callable[[str], int] | None = None,
        budget: int | None = None,
    ) -> Messages:
        """The whole prompt for one email; with ``count_tokens`` and ``budget`` the email is cut to fit."""
        body_chars = PROMPT_BODY_CHARS
        text = self.request_text(request, body_chars)
        if count_tokens is not None and budget is not None:
            fixed = sum(count_tokens(m["content"]) for m in self.prefix())
            while body_chars > 200 and fixed + count_tokens(text) > budget:
                body_chars //= 2  # scripts with one token per character need far fewer characters
                text = self.request_text(request, body_chars)
        return [*self.prefix(), {"role": "user", "content": text}]


def with_user_examples(prompt: ReversePrompt, examples: list[tuple[str, str]]) -> ReversePrompt:
    """``prompt`` with the user's own (email, instruction) examples after its worked ones: the instructions
    the user typed for drafts they kept teach the labeller how this user asks. Each email is shown as a
    request is (no recipient or subject known: the text alone)."""
    if not examples:
        return prompt
    shown = tuple((prompt.request_text(Request(to="", subject="", body=email)), instruction.strip())
                  for email, instruction in examples)  # fmt: skip
    return replace(prompt, examples=prompt.examples + shown)


def email_text(body: str) -> str:
    """What an email says, as the labeller sees it: no signature or list footer after a rule line ("-- ",
    "_____"), no greeting and no sign-off lines. Kernel-list mail ends "Regards, Christian." and then the
    list's footer; shown whole, a small model answers with the footer."""
    before = _RULE.split(body, maxsplit=1)[0]
    return own_text(before if before.strip() else body)


def cut(text: str, chars: int) -> str:
    """The first ``chars`` characters of ``text``, ending at a paragraph, line or sentence when one is near."""
    text = text.strip()
    if len(text) <= chars:
        return text
    head = text[:chars]
    for sep in ("\n\n", "\n", ". ", "? ", "! "):
        at = head.rfind(sep)
        if at >= chars // 2:
            return head[: at + (1 if sep.strip() else 0)].rstrip() + " …"
    return head.rstrip() + " …"


def parse_prompt(name: str, raw: str) -> ReversePrompt:
    """Parse the text of a reverse-instruction prompt file; raise ValueError when it is malformed."""
    lines = raw.splitlines()
    m = re.fullmatch(r"#\s*version:\s*(\d+)\s*", lines[0] if lines else "")
    if not m:
        raise ValueError(f"prompt {name}.txt must start with '# version: N'")
    sections: list[tuple[str, list[str]]] = []
    for line in lines[1:]:
        found = _SECTION.match(line)
        if found:
            sections.append((found.group(1), []))
        elif sections:
            sections[-1][1].append(line)
        elif line.strip() and not line.startswith("#"):
            raise ValueError(f"prompt {name}.txt: text before the first [section]: {line[:40]!r}")
    texts = [(kind, "\n".join(body).strip("\n")) for kind, body in sections]
    by_kind = {kind: text for kind, text in texts if kind in ("system", "context", "request")}
    missing = {"system", "context", "request"} - by_kind.keys()
    if missing:
        raise ValueError(f"prompt {name}.txt lacks the section(s) {', '.join(sorted(missing))}")
    shots = [(kind, text) for kind, text in texts if kind in ("email", "instruction")]
    if len(shots) % 2 or any(
        a[0] != "email" or b[0] != "instruction" for a, b in zip(shots[::2], shots[1::2], strict=True)
    ):
        raise ValueError(f"prompt {name}.txt: every [email] example must be followed by its [instruction]")
    examples = tuple((a[1], b[1]) for a, b in zip(shots[::2], shots[1::2], strict=True))
    return ReversePrompt(name, int(m.group(1)), by_kind["system"], examples, by_kind["context"], by_kind["request"])


@functools.cache
def load_prompt(name: str = PROMPT_NAME) -> ReversePrompt:
    """``resources/prompts/NAME.txt`` parsed (cached: the file ships with the program)."""
    raw = (importlib.resources.files("resources") / "prompts" / f"{name}.txt").read_text(encoding="utf-8")
    return parse_prompt(name, raw)
