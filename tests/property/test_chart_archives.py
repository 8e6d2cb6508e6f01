"""Properties of chart archive reading (importer.core.charts.read_chart_archive) over hostile archives.

Archives are built in memory (`testbed.charts.raw_archive`, which streams runs of zeros): a chart directory with a
Chart.yaml and values.yaml drawn from image conventions (image strings and maps, `images` lists, globals, sub-chart
sections, dependencies with aliases) or replaced by YAML hazards (alias bombs, deep nesting, huge numbers, tags);
sub-charts as directories and as nested archives; and hostile entries (links, devices, fifos, `..`, absolute and
drive-letter paths, backslashes, duplicates, entries outside the chart directory, huge files, huge pax headers),
or bytes that are not a gzip'd tar at all.

For any of them: a ChartInfo or a ChartError, within the bounds of `tests.property.hostile`; a ChartError's message
is valid Unicode without control characters, and what a ChartInfo lists stays within its documented limits.
"""

from __future__ import annotations

import functools
import tarfile
from typing import Any

import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from importer.core.charts import MAX_SOURCES_PER_IMAGE, MAX_UNRESOLVED, ChartError, ChartInfo, read_chart_archive
from importer.core.reference import parse_reference
from testbed.charts import RawEntry, raw_archive
from tests.property.hostile import (
    bounded,
    hostile_text,
    is_scalar_values_only,
    scaled_examples,
    tricky_text,
    unsafe_characters_in,
    yaml_alias_bomb,
    yaml_deep,
    yaml_hazards,
)

REFERENCES = ("nginx:1.27", "bitnami/redis:7.2", "ghcr.io/acme/app@sha256:" + "a" * 64, "127.0.0.1:5000/team/app",
              "{{ .Values.image }}", "not a reference", "UPPER/case", "a" * 300)
SUBCHARTS = ("redis", "common", "db")
IMAGE_KEYS = ("image", "sidecarImage", "init_image", "proxy-image", "images", "extraImages", "global", "redis", "db",
              "replicaCount", "tag", "repository", "registry", "digest", "name")


@functools.cache
def _image_map() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={
        "registry": st.sampled_from(("docker.io", "quay.io", "", "127.0.0.1:5000")),
        "repository": st.sampled_from(("bitnami/redis", "team/app", "", "{{ x }}")),
        "name": st.sampled_from(("app", "")),
        "tag": st.one_of(st.sampled_from(("1.0", "latest", "")), st.floats(1, 2), st.integers(0, 9)),
        "digest": st.sampled_from(("sha256:" + "b" * 64, "", "sha256:short")),
    })


VALUES = st.recursive(
    st.one_of(st.sampled_from(REFERENCES), _image_map(), st.none(), st.integers(), tricky_text(8)),
    lambda children: st.one_of(st.dictionaries(st.sampled_from(IMAGE_KEYS), children, max_size=4),
                               st.lists(children, max_size=3)),
    max_leaves=12,
)


@functools.cache
def _metadata(name: str, with_dependencies: bool) -> st.SearchStrategy[dict[str, Any]]:
    annotations = st.fixed_dictionaries({}, optional={
        "platform-guard.io/platforms": st.one_of(st.sampled_from(("linux/amd64, linux/arm64", "linux/amd64,,",
                                                                  "bogus/arch")), tricky_text(8)),
        "artifacthub.io/images": st.lists(
            st.fixed_dictionaries(
                {"name": st.just("x"), "image": st.sampled_from(REFERENCES)},
                optional={"platforms": st.lists(st.sampled_from(("linux/amd64", "nope")), max_size=2)},
            ),
            max_size=3).map(lambda entries: yaml.safe_dump(entries)),
    })
    dependencies = st.lists(
        st.fixed_dictionaries({"name": st.sampled_from(SUBCHARTS)},
                              optional={"alias": st.sampled_from(("a", "b", "c"))}),
        max_size=4,
    ) if with_dependencies else st.just([])
    return st.builds(
        lambda version, app_version, annotations_, dependencies_: {
            "apiVersion": "v2", "name": name, "version": version, "appVersion": app_version,
            "annotations": annotations_, "dependencies": dependencies_,
        },
        st.one_of(st.sampled_from(("1.0.0", "0.1.0")), st.floats(0, 10), tricky_text(6)),
        st.one_of(st.none(), st.sampled_from(("2.1", "1.27"))),
        annotations,
        dependencies,
    )


@functools.cache
def _yaml_file(document: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """A YAML file: the document dumped, or a hazard (an alias bomb, deep nesting, a huge number, a tag...)."""
    hazards = st.one_of(
        yaml_hazards().map(lambda hazard: f"name: {hazard}\nversion: 1.0.0\n"),
        st.builds(yaml_alias_bomb, st.integers(2, 9), st.integers(2, 9),
                  name=st.sampled_from(("name", "version", "image", "annotations", "dependencies"))),
        st.builds(lambda depth: yaml_deep(depth, kind="block"), st.sampled_from((60, 64, 65, 200, 900))),
        hostile_text().map(lambda text: text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")),
    )
    dumped = document.map(lambda value: yaml.safe_dump(value, allow_unicode=True, sort_keys=False))
    return st.one_of(dumped, dumped, dumped, hazards).map(lambda text: text.encode("utf-8", "surrogatepass"))


@functools.cache
def _chart_entries(top: str, depth: int) -> st.SearchStrategy[list[RawEntry]]:
    """The entries of one chart under `top/`: Chart.yaml, values.yaml, and sub-charts as directories or archives."""
    name = top.rsplit("/", 1)[-1].split("-", 1)[0]
    files = st.tuples(_yaml_file(_metadata(name, depth < 2)), st.one_of(st.none(), _yaml_file(VALUES)))
    subcharts = st.lists(st.sampled_from(SUBCHARTS), max_size=2 if depth < 2 else 0, unique=True)

    def build(chart_and_values: tuple[bytes, bytes | None], names: list[str], packed: list[bool],
              nested: list[list[RawEntry]]) -> list[RawEntry]:
        chart_yaml, values_yaml = chart_and_values
        entries = [RawEntry(f"{top}/", type=tarfile.DIRTYPE), RawEntry(f"{top}/Chart.yaml", chart_yaml)]
        if values_yaml is not None:
            entries.append(RawEntry(f"{top}/values.yaml", values_yaml))
        for sub, as_archive, sub_entries in zip(names, packed, nested, strict=False):
            if as_archive:
                relocated = [_moved(entry, f"{top}/charts/{sub}/", f"{sub}/") for entry in sub_entries]
                entries.append(RawEntry(f"{top}/charts/{sub}-1.0.0.tgz", raw_archive(relocated)))
            else:
                entries.extend(sub_entries)
        return entries

    return subcharts.flatmap(lambda names: st.builds(
        build, files, st.just(names), st.lists(st.booleans(), min_size=len(names), max_size=len(names)),
        st.tuples(*(_chart_entries(f"{top}/charts/{sub}", depth + 1) for sub in names)).map(list),
    ))


def _moved(entry: RawEntry, old: str, new: str) -> RawEntry:
    return RawEntry(entry.name.replace(old, new, 1), entry.content, entry.type, entry.linkname, entry.zeros,
                    entry.pax_headers)


def _tar_name(name: str) -> str:
    """A name tarfile can write: its UTF-8 bytes (lone surrogates as their invalid bytes) as surrogate escapes."""
    return name.encode("utf-8", "surrogatepass").decode("utf-8", "surrogateescape")


HOSTILE_ENTRIES = st.one_of(
    st.sampled_from((
        RawEntry("shop/templates/link", type=tarfile.SYMTYPE, linkname="/etc/passwd"),
        RawEntry("shop/templates/hard", type=tarfile.LNKTYPE, linkname="shop/Chart.yaml"),
        RawEntry("shop/dev", type=tarfile.CHRTYPE),
        RawEntry("shop/fifo", type=tarfile.FIFOTYPE),
        RawEntry("shop/../escape", b"x"),
        RawEntry("/etc/cron.d/x", b"x"),
        RawEntry("C:evil", b"x"),
        RawEntry("shop\\..\\evil", b"x"),
        RawEntry("shop/Chart.yaml", b"name: again\nversion: 2\n"),
        RawEntry("elsewhere/values.yaml", b"a: 1"),
        RawEntry("shop/values.yaml", zeros=5 * 1024 * 1024 + 1),
        RawEntry("shop/templates/big.yaml", zeros=6 * 1024 * 1024),
        RawEntry("shop/templates/pax.yaml", b"x", pax_headers={"comment": "x" * 70_000}),
        RawEntry("shop/" + "n" * 5_000, b"long name"),
        RawEntry(_tar_name("shop/templates/\x1b[2J\ud800.yaml"), b"odd name"),
    )),
    st.builds(lambda name: RawEntry(_tar_name(f"shop/{name}"), b"x"), tricky_text(12)),
)


@st.composite
def chart_archives(draw: st.DrawFn) -> bytes:
    """A chart archive `shop-1.0.0.tgz`: drawn charts, maybe with hostile entries in, maybe corrupted whole."""
    entries = draw(_chart_entries("shop", 0), label="chart entries")
    for hostile in draw(st.lists(HOSTILE_ENTRIES, max_size=2), label="hostile entries"):
        entries.insert(draw(st.integers(0, len(entries)), label="at"), hostile)
    archive = raw_archive(entries)
    how = draw(st.sampled_from(("whole", "whole", "whole", "truncated", "not-gzip", "tar-only")), label="archive")
    if how == "truncated":
        return archive[: draw(st.integers(0, len(archive)), label="cut at")]
    if how == "not-gzip":
        return draw(st.binary(max_size=64), label="bytes")
    if how == "tar-only":
        return raw_archive(entries, compress=False)
    return archive


def check_read(outcome: ChartInfo | Exception) -> None:
    if isinstance(outcome, ChartError):
        message = str(outcome)
        assert message and is_scalar_values_only(message), message[:300]
        assert not unsafe_characters_in(message), (unsafe_characters_in(message), message[:300])
        return
    assert isinstance(outcome, ChartInfo)
    assert outcome.name and outcome.version
    assert len(outcome.unresolved) <= MAX_UNRESOLVED
    for image in outcome.images:
        parse_reference(image.reference)  # a listed image is a reference (ReferenceError fails the property)
        assert 1 <= len(image.sources) <= MAX_SOURCES_PER_IMAGE, image


# Worst inputs of issue 12: an alias bomb in Chart.yaml's name (item 6), sub-chart values with many image keys
# read from the sub-chart's own values and from the parent's section (item 7), aliases that instantiate a sub-chart
# exponentially often.
@functools.cache
def worst_archives() -> dict[str, bytes]:
    many_keys = "".join(f"c{number}Image: team/app{number}:1\n" for number in range(16_000))
    parent_section = "sub:\n" + "".join(f"  c{number}Image: team/app{number}:1\n" for number in range(16_000))
    aliases = "dependencies:\n" + "".join(f"  - name: sub\n    alias: a{n}\n" for n in range(10))

    def chart(chart_yaml: str, values: str | None = None, sub_values: str | None = None,
              sub_chart_yaml: str = "name: sub\nversion: 1.0.0\n") -> bytes:
        entries = [RawEntry("top/Chart.yaml", chart_yaml.encode())]
        if values is not None:
            entries.append(RawEntry("top/values.yaml", values.encode()))
        entries.append(RawEntry("top/charts/sub/Chart.yaml", sub_chart_yaml.encode()))
        if sub_values is not None:
            entries.append(RawEntry("top/charts/sub/values.yaml", sub_values.encode()))
        return raw_archive(entries)

    nested = "name: sub\nversion: 1.0.0\n" + aliases
    return {
        "alias-bomb-name": chart(yaml_alias_bomb(9, 9, name="name") + "version: 1.0.0\n"),
        "alias-bomb-values": chart("name: top\nversion: 1.0.0\n", yaml_alias_bomb(9, 9, name="image")),
        "image-keys-in-subchart": chart("name: top\nversion: 1.0.0\n", sub_values=many_keys),
        "image-keys-in-parent-section": chart("name: top\nversion: 1.0.0\n", parent_section, sub_values="x: 1\n"),
        "aliases-on-two-levels": chart("name: top\nversion: 1.0.0\n" + aliases, sub_chart_yaml=nested),
        "huge-integer-version": chart("name: top\nversion: " + "1" * 5_000 + "\n"),
    }


@settings(max_examples=scaled_examples(1.0))
@given(archive=chart_archives())
@example(archive=worst_archives()["alias-bomb-name"])
@example(archive=worst_archives()["alias-bomb-values"])
@example(archive=worst_archives()["image-keys-in-subchart"])
@example(archive=worst_archives()["image-keys-in-parent-section"])
@example(archive=worst_archives()["aliases-on-two-levels"])
@example(archive=worst_archives()["huge-integer-version"])
def test_any_archive_is_read_or_refused_with_a_chart_error(archive: bytes) -> None:
    outcome = bounded(lambda: read_chart_archive(archive), allowed=(ChartError,), what="chart archive")
    check_read(outcome)
