"""The gettext catalogues: complete, settled, consistent with the code and with CLDR.

A text missing from a catalogue, or left fuzzy by `make messages` (its English changed),
would be shown in English without a word: gettext falls back silently. So would a
template (messages.pot) or a compiled .mo older than the code. Each check below is a
function of a catalogue, and a test feeds it broken catalogues to show it can fail.
"""

from __future__ import annotations

import gettext
import shlex
import string
import subprocess
import sys
from pathlib import Path

import pytest
from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from bot.i18n import DOMAIN, LOCALES
from bot.messages import MESSAGES
from bot.texts import DEFAULT_LANGUAGE, LANGUAGES, plural_index

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = LOCALES / f"{DOMAIN}.pot"
CATALOGUE_LANGUAGES = [lang for lang in LANGUAGES if lang != DEFAULT_LANGUAGE]


def po_path(language: str) -> Path:
    return LOCALES / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def load(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale=locale)


def msgid_key(msgid: str | tuple[str, ...]) -> str:
    return msgid if isinstance(msgid, str) else msgid[0]


def fields(text: str) -> set[tuple[str, str, str]]:
    """(name, format spec, conversion) of every str.format placeholder."""
    return {(name, spec or "", conversion or "") for _, name, spec, conversion in string.Formatter().parse(text)
            if name is not None}


def problems(catalog: Catalog, template: Catalog) -> list[str]:
    """What is wrong with a catalogue against the template: missing, untranslated, fuzzy,
    extra texts; plural forms not nplurals; placeholders differing from the English."""
    found: list[str] = []
    if catalog.fuzzy:
        found.append("header: fuzzy")
    nplurals = catalog.num_plurals
    wanted = {msgid_key(m.id) for m in template if m.id}
    have = {msgid_key(m.id): m for m in catalog if m.id}
    found += [f"missing: {m!r}" for m in sorted(wanted - set(have))]
    found += [f"not in the template: {m!r}" for m in sorted(set(have) - wanted)]
    for key, message in have.items():
        english = [message.id] if isinstance(message.id, str) else list(message.id)
        translated = [message.string] if isinstance(message.string, str) else list(message.string)
        if message.fuzzy:
            found.append(f"fuzzy: {key!r}")
        if not all(translated):
            found.append(f"untranslated: {key!r}")
            continue
        if len(english) == 2 and len(translated) != nplurals:
            found.append(f"{len(translated)} plural forms, not {nplurals}: {key!r}")
        expected = set().union(*(fields(e) for e in english))
        for form in translated:
            if fields(form) != expected:
                found.append(f"placeholders {sorted(fields(form))} != {sorted(expected)}: {key!r}")
    return found


def test_the_template_holds_exactly_the_texts_of_the_code(tmp_path: Path) -> None:
    """messages.pot is what `make messages` extracts now (the Makefile's own command)."""
    dry_run = subprocess.run(["make", "-s", "-n", "messages"], cwd=ROOT, capture_output=True, text=True, check=True)
    command = next(shlex.split(line) for line in dry_run.stdout.splitlines() if "pybabel extract" in line)
    out = tmp_path / "fresh.pot"
    command[command.index("-o") + 1] = str(out)
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", *command[1:]], cwd=ROOT, check=True,
                   capture_output=True)
    fresh = {msgid_key(m.id): m.id for m in load(out) if m.id}
    committed = {msgid_key(m.id): m.id for m in load(TEMPLATE) if m.id}
    assert fresh == committed, "run `make messages` (and translate what it adds)"
    registry = {m.singular: (m.singular, m.plural) if m.plural else m.singular for m in MESSAGES.values()}
    assert set(registry) <= set(fresh)
    for key, msgid in registry.items():
        assert fresh[key] == msgid, key


def test_languages_are_the_catalogues() -> None:
    on_disk = {p.parent.parent.name for p in LOCALES.glob(f"*/LC_MESSAGES/{DOMAIN}.po")}
    assert set(CATALOGUE_LANGUAGES) == on_disk and on_disk


@pytest.mark.parametrize("language", CATALOGUE_LANGUAGES)
def test_every_catalogue_is_complete_and_settled(language: str) -> None:
    assert problems(load(po_path(language), language), load(TEMPLATE)) == []


@pytest.mark.parametrize("language", CATALOGUE_LANGUAGES)
def test_the_compiled_catalogue_is_the_po_file(language: str) -> None:
    """The committed .mo (what the bot loads) says what the .po says: `make compile-messages`."""
    with (po_path(language).with_suffix(".mo")).open("rb") as f:
        compiled = gettext.GNUTranslations(f)
    catalog = load(po_path(language), language)
    po_plural = gettext.c2py(catalog.plural_expr)  # the .po header's rule, as gettext compiles it
    for message in catalog:
        if not message.id:
            continue
        if isinstance(message.id, str):
            assert compiled.gettext(message.id) == message.string, message.id
        else:
            for n in range(200):
                form = message.string[po_plural(n)]
                assert compiled.ngettext(message.id[0], message.id[1], n) == form, (message.id, n)


@pytest.mark.parametrize("language", CATALOGUE_LANGUAGES)
def test_the_plural_forms_header_follows_cldr(language: str) -> None:
    """Plural-Forms picks one form per CLDR category (ru: 1, 21 минута; 2-4 минуты; 5-20 минут)."""
    catalog = load(po_path(language), language)
    locale = Locale.parse(language)
    index_of: dict[str, set[int]] = {}
    for n in range(1000):
        index_of.setdefault(locale.plural_form(n), set()).add(plural_index(language, n))
    assert all(len(indexes) == 1 for indexes in index_of.values()), index_of
    assert len(index_of) == catalog.num_plurals  # every form is reachable, none is spare


def _broken(template: Catalog) -> Catalog:
    """The Russian catalogue with one text missing, one fuzzy, one placeholder renamed,
    one plural form short, one text untranslated."""
    catalog = load(po_path("ru"), "ru")
    messages = [m for m in catalog if m.id]
    plural = next(m for m in messages if not isinstance(m.id, str))
    single = [m for m in messages if isinstance(m.id, str) and "{" in m.id]
    catalog.delete(single[0].id)
    single[1].flags.add("fuzzy")
    single[2].string = single[2].string.replace("{", "{x", 1)
    plural.string = tuple(plural.string[:2])
    single[3].string = ""
    return catalog


def test_the_checks_catch_what_they_are_for() -> None:
    template = load(TEMPLATE)
    found = problems(_broken(template), template)
    kinds = sorted({p.split(":")[0].split(" ")[0] for p in found})
    assert kinds == ["2", "fuzzy", "missing", "placeholders", "untranslated"], found
    extra = load(po_path("ru"), "ru")
    extra.add("A text the code no longer has", "Текст, которого нет в коде")
    assert problems(extra, template) == ["not in the template: 'A text the code no longer has'"]
