# -*- coding: utf-8 -*-
# Copyright: smart-deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Row values out of what gets recorded: the step summary, the JSON run log, releases.json, the run's messages.
Pure logic, self-contained (the callback and the filters load this file by its path).

PostgreSQL puts the values of the rows a statement failed on into its messages: a unique index over
duplicates says ``DETAIL:  Key (name)=(Green tea, 100 g) is duplicated.``, a foreign key ``Key (product_id)=(7)
is not present in table "catalog_product".``, NOT NULL and check constraints ``Failing row contains (3, Bob,
null).``, a cast ``invalid input syntax for type integer: "12 kg"``. Counts, table and column names,
constraint names and SQLSTATEs stay; each value becomes ``…``. The values stay in the local validation report
on the target (state_dir/validations/*.json, 0600) - the evidence a person reads before deciding.
"""

from __future__ import annotations

import re

HIDDEN = "…"

KEY = r"(?i)(\bkey \((?:[^()]|\([^()]*\))*\)=\()(?!" + HIDDEN + r"\))"
# (pattern, replacement), applied in order to the whole text. A message is redacted where it is made (the
# migration checks redact PostgreSQL's message before adding counts after it), and again wherever text is
# recorded: already hidden values are left as they are.
RULES = (
    # Key (cols)=(values) is duplicated / already exists / is not present in table / is still referenced from
    # table: the values up to the LAST such ending (across lines: a value may hold a newline or ") is duplicated")
    (
        re.compile(KEY + r".*(\)(?: is duplicated| already exists| is not present in table| is still referenced from table))", re.S),
        r"\1" + HIDDEN + r"\2",
    ),
    # any other Key (cols)=(values) - exclusion constraints' "conflicts with existing key (cols)=(values)":
    # up to the end of the line
    (re.compile(KEY + r"[^\n]*"), r"\1" + HIDDEN + ")"),
    # NOT NULL, check constraints, partitions: the whole row, up to a ")." that ends a line (a value may hold a
    # newline), else up to the end of the line
    (re.compile(r"(?i)(failing row contains \()(?!" + HIDDEN + r"\)).*?\)\.[ \t]*(?=\n|\Z)", re.S), r"\1" + HIDDEN + ")."),
    (re.compile(r"(?i)(failing row contains \()(?!" + HIDDEN + r"\))[^\n]*"), r"\1" + HIDDEN + ")."),
    # casts: invalid input syntax for type integer: "12 kg"; invalid input value for enum size: "big"
    (
        re.compile(r'(?i)(invalid input (?:syntax for(?: type)? [^:\n]+|value for enum [^:\n]+)): "(?!' + HIDDEN + r'")[^\n]*'),
        r'\1: "' + HIDDEN + '"',
    ),
    # value "123456789012" is out of range for type integer; date/time field value out of range: "2026-13-45"
    (re.compile(r'(?i)\bvalue "(?!' + HIDDEN + r'")[^\n]*" (is out of range for type)'), r'value "' + HIDDEN + r'" \1'),
    (re.compile(r'(?i)(field value out of range): "(?!' + HIDDEN + r'")[^\n]*'), r'\1: "' + HIDDEN + '"'),
)


def redact_text(text: str) -> str:
    """``text`` with the row values of PostgreSQL's messages replaced by …; everything else as it was."""
    if not isinstance(text, str) or not text:
        return text
    for pattern, replacement in RULES:
        text = pattern.sub(replacement, text)
    return text


def redact(value):
    """``value`` (text, or lists and dicts of them, nested) with every text redacted; keys stay."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {key: redact(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(item) for item in value]
    return value
