"""Hostile chart content: YAML that expands, scalars that crash or cost super-linear time, values and sub-charts that
make the reader do quadratic or exponential work, and error messages that quote what a chart's author wrote.

Every case is refused, or read, in bounded time and memory; a refusal is a ChartError naming the file, and the text
it quotes is cut short and shown escaped. Charts are built in code (`testbed.charts`); the archives are small, what
they would cost a reader that expands or rescans is not.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from importer.core.charts import ChartError, ChartInfo, read_chart_archive
from testbed.charts import ChartSpec, RawEntry, chart_archive, raw_archive

MiB = 1024 * 1024


def archive(chart_yaml: str = "name: bad\nversion: 1.0.0\n", values: str | None = None,
            **files: str) -> bytes:
    """A chart `bad` with this Chart.yaml and values.yaml, and more files by path (`charts__sub__Chart_yaml`)."""
    entries = [RawEntry("bad/Chart.yaml", chart_yaml.encode())]
    if values is not None:
        entries.append(RawEntry("bad/values.yaml", values.encode()))
    for name, content in files.items():
        entries.append(RawEntry("bad/" + name.replace("__", "/").replace("_yaml", ".yaml"), content.encode()))
    return raw_archive(entries)


def alias_bomb(levels: int, *, key: str = "a") -> str:
    """YAML anchors, each a list of ten aliases of the one before: the last expands to 10**levels scalars."""
    lines = [f"{key}0: &{key}0 [x, x, x, x, x, x, x, x, x, x]\n"]
    lines += [f"{key}{n}: &{key}{n} [{', '.join([f'*{key}{n - 1}'] * 10)}]\n" for n in range(1, levels)]
    return "".join(lines)


def alias_keys(text_length: int, mappings: int) -> str:
    """One long string used, through an alias, as a key of many mappings (each holding an image)."""
    lines = [f"k: &k {'k' * text_length}\n"]
    lines += [f"m{n}:\n  ? *k\n  : {{image: 'team/m{n}:1'}}\n" for n in range(mappings)]
    return "".join(lines)


def nested_directories(depth: int) -> bytes:
    """A chart whose sub-chart directory holds a sub-chart directory, `depth` levels down."""
    entries, prefix = [], "bad/"
    for level in range(depth + 1):
        entries.append(RawEntry(f"{prefix}Chart.yaml", f"name: c{level}\nversion: 1.0.0\n".encode()))
        prefix += f"charts/c{level + 1}/"
    return raw_archive(entries)


def alias_fan_out(levels: int, aliases: int) -> bytes:
    """Each level uses the sub-chart below it under `aliases` names: Helm instantiates it aliases**levels times."""
    entries, prefix = [], "bad/"
    for level in range(levels):
        dependencies = "".join(f"  - {{name: c, alias: a{n}}}\n" for n in range(aliases))
        name = "bad" if level == 0 else "c"
        entries.append(RawEntry(f"{prefix}Chart.yaml",
                                f"name: {name}\nversion: 1.0.0\ndependencies:\n{dependencies}".encode()))
        prefix += "charts/c/"
    entries.append(RawEntry(f"{prefix}Chart.yaml", b"name: c\nversion: 1.0.0\n"))
    return raw_archive(entries)


@dataclass(frozen=True)
class Cost:
    seconds: float  # CPU time
    peak: int  # tracemalloc peak, bytes


def measured(call: Callable[[], object]) -> tuple[object, Cost]:
    """What `call` returns or raises, and its CPU time and allocation peak."""
    tracemalloc.start()
    started = time.process_time()
    try:
        try:
            result: object = call()
        except Exception as error:  # noqa: BLE001 - the caller asserts what it is
            result = error
        seconds = time.process_time() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, Cost(seconds, peak)


# --- YAML that expands, and scalars that crash or cost super-linear time --------------------------------------------

REFUSED = [
    ("chart-yaml-name-alias-bomb", lambda: archive(alias_bomb(7) + "name: *a6\nversion: 1.0.0\n"),
     r"^Chart.yaml: .*expands to more than 1000000 YAML nodes"),
    ("subchart-chart-yaml-alias-bomb",
     lambda: archive(charts__sub__Chart_yaml=alias_bomb(7) + "name: *a6\nversion: 1.0.0\n"),
     r"^charts/sub/Chart.yaml: .*expands to more than 1000000 YAML nodes"),
    ("values-alias-bomb", lambda: archive(values=alias_bomb(9) + "image: *a8\n"),
     r"^values.yaml: .*expands to more than 1000000 YAML nodes"),
    ("annotation-alias-bomb",
     lambda: archive("name: bad\nversion: 1.0.0\nannotations:\n  artifacthub.io/images: |\n"
                     + "".join(f"    {line}\n" for line in alias_bomb(9, key="b").splitlines())),
     r"^Chart.yaml:artifacthub.io/images: .*expands to more than 1000000 YAML nodes"),
    ("alias-keys-multiply-text", lambda: archive(values=alias_keys(200_000, 60)),
     r"^values.yaml: .*expands to more than 10485760 characters"),
    ("alias-inside-itself", lambda: archive(values="a: &a [x, *a]\n"),
     r"^values.yaml: .*an alias inside the value it names \(line 1"),
    ("integer-too-long", lambda: archive("name: bad\nversion: 0x" + "f" * 5000 + "\n"),
     r"^Chart.yaml: .*a number of 5002 characters, over the 1000 allowed \(line 2"),
    ("sexagesimal-integer", lambda: archive(values="a: 1" + ":30" * 300_000 + "\n"),
     r"^values.yaml: .*a number of 900001 characters"),
    ("invalid-date", lambda: archive(values="a: 2001-13-45\n"), r"^values.yaml: .*month must be in 1..12 \(line 1"),
    ("bool-tag", lambda: archive(values="a: !!bool maybe\n"), r"^values.yaml: .*'maybe' .*\(line 1"),
    ("float-tag", lambda: archive(values="a: !!float abc\n"), r"^values.yaml: .*'abc' .*\(line 1"),
    ("int-tag", lambda: archive(values="a: !!int abc\n"), r"^values.yaml: .*'abc' .*\(line 1"),
    ("timestamp-tag", lambda: archive(values="a: !!timestamp abc\n"), r"^values.yaml: .*\(line 1"),
    ("subcharts-nest-too-deep", lambda: nested_directories(11), r"sub-charts nest deeper than 10 levels"),
    ("subcharts-nest-very-deep", lambda: nested_directories(1200), r"sub-charts nest deeper than 10 levels"),
    ("subchart-alias-fan-out", lambda: alias_fan_out(6, 10), r"more than 10000 sub-chart instances"),
    ("escape-in-a-subchart-path",
     lambda: archive(**{"charts__\x1b[2J__Chart_yaml": "name: x\nversion: 1.0.0\n"}),
     r"^chart archive: entry 'bad/charts/\\x1b\[2J/Chart.yaml': a character that is not printable"),
]


@pytest.mark.timeout(120)  # before the fixes some of these took minutes
@pytest.mark.parametrize(("build", "message"), [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED])
def test_hostile_yaml_and_nesting_are_refused_quickly(build: Callable[[], bytes], message: str) -> None:
    """Each is a ChartError naming the file and what is wrong, within a second or two and a few MiB."""
    chart = build()
    error, cost = measured(lambda: read_chart_archive(chart))
    assert isinstance(error, ChartError), error
    assert len(str(error)) < 500, str(error)[:500]
    with pytest.raises(ChartError, match=message):
        raise error
    assert cost.seconds < 5, cost
    assert cost.peak < 32 * MiB, cost


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: archive(values="base: &base {repository: team/app, tag: '1'}\n"
                                "web: {image: *base}\nworker: {image: *base}\n"), {"docker.io/team/app:1"}),
        (lambda: archive(values="x: &x [1, 2]\n" + "".join(f"y{n}: *x\n" for n in range(1000))), set()),
        (lambda: archive("name: bad\nversion: 1.0.0\nbig: " + "9" * 1000 + "\n"), set()),
        (lambda: archive(values="defaults: &defaults {pullPolicy: Always}\n"
                                "image: {<<: *defaults, repository: team/merged, tag: '2'}\n"),
         {"docker.io/team/merged:2"}),
    ],
    ids=["aliases-shared-by-images", "a-thousand-aliases", "integer-of-1000-digits", "merge-key"],
)
def test_ordinary_aliases_and_numbers_are_read(build: Callable[[], bytes], expected: set[str]) -> None:
    """Anchors, aliases and merge keys as charts use them, and long numbers up to the limit, read as before."""
    info = read_chart_archive(build())
    assert {image.reference for image in info.images} == expected


def test_subcharts_nest_up_to_the_depth_limit() -> None:
    """Ten levels of sub-chart directories below the top chart are read, each named by its path."""
    info = read_chart_archive(nested_directories(10))
    assert info.subcharts == tuple("/".join(f"c{level}" for level in range(1, deepest + 1)) for deepest in range(1, 11))


# --- error messages quote outside text cut short and escaped ---------------------------------------------------------

BIG = 1_000_000
QUOTING = [
    ("name-is-a-long-list", lambda: read_chart_archive(archive("name: [" + ", ".join(["x"] * 100_000) + "]\n")),
     "Chart.yaml: `name` must be a non-empty string, got ['x', 'x', 'x', 'x', 'x', 'x', ...]"),
    ("name-holds-escapes", lambda: read_chart_archive(archive('name: ["\\e]0;owned\\a\\e[2J"]\nversion: 1\n')),
     "Chart.yaml: `name` must be a non-empty string, got ['\\x1b]0;owned\\x07\\x1b[2J']"),
    ("config-name-is-huge",
     lambda: read_chart_archive(archive(), config={"name": "y" * BIG, "version": "1.0.0"}),
     "chart config: name 'yyyy"),
    ("platforms-annotation-entry-is-huge",
     lambda: read_chart_archive(archive("name: bad\nversion: 1.0.0\nannotations:\n  platform-guard.io/platforms: "
                                        "linux/" + "a" * BIG + "/v1/x\n")),
     "Chart.yaml: annotation 'platform-guard.io/platforms': "),
    ("annotation-image-is-huge",
     lambda: read_chart_archive(archive("name: bad\nversion: 1.0.0\nannotations:\n  artifacthub.io/images: |\n"
                                        "    - image: " + "x" * BIG + "/\n")),
     "Chart.yaml:artifacthub.io/images[0]: "),
    ("syntax-error-next-to-bidi-override", lambda: read_chart_archive(archive(values="a: [\u202e b\n")),
     "values.yaml: not valid YAML: "),
]


@pytest.mark.parametrize(("call", "start"), [case[1:] for case in QUOTING], ids=[case[0] for case in QUOTING])
def test_messages_quote_a_short_escaped_excerpt(call: Callable[[], ChartInfo], start: str) -> None:
    """A refusal quotes at most a short excerpt of what the chart holds, with control characters shown escaped."""
    with pytest.raises(ChartError) as refused:
        call()
    message = str(refused.value)
    assert message.startswith(start), message[:300]
    assert len(message) < 400, message[:400]
    assert message.isprintable(), message  # no control characters, bidi controls, line breaks or lone surrogates


# --- work linear in the chart: no per-image rescans, no repeated text -----------------------------------------------


def subchart_with_image_keys(count: int) -> bytes:
    """A chart whose sub-chart's own values hold `count` image keys (`c17Image: team/c17:1`)."""
    sub = ChartSpec("sub", "1.0.0", values="".join(f"c{n}Image: team/c{n}:1\n" for n in range(count)))
    return chart_archive(ChartSpec("top", "1.0.0", subcharts=(sub,)))


@pytest.mark.timeout(300)  # before the fix: 10,000 keys took 7.6 s, 40,000 about two minutes
def test_subchart_values_with_many_image_keys_are_read_in_linear_time() -> None:
    """40,000 and 80,000 image keys in a sub-chart's values: every image found, in seconds, twice the keys under 4x."""
    seconds: dict[int, float] = {}
    for count in (40_000, 80_000):
        chart = subchart_with_image_keys(count)
        started = time.process_time()
        info = read_chart_archive(chart)
        seconds[count] = time.process_time() - started
        assert len(info.images) == count
        assert info.images[0].sources == ("charts/sub/values.yaml:c0Image",)
    assert seconds[40_000] < 10 and seconds[80_000] < 20, seconds
    assert seconds[80_000] < 4 * seconds[40_000], seconds


def test_a_long_global_registry_is_not_rebuilt_into_every_image() -> None:
    """A 100,000-character `global.imageRegistry` with 4,000 image maps: a few unresolved entries, quickly."""
    values = ("global:\n  imageRegistry: " + "r" * 100_000 + "\n"
              + "".join(f"i{n}:\n  image: {{repository: team/i{n}}}\n" for n in range(4000)))
    chart = archive(values=values)
    info, cost = measured(lambda: read_chart_archive(chart))
    assert isinstance(info, ChartInfo), info
    assert info.images == () and len(info.unresolved) == 100
    assert all(len(entry) < 200 for entry in info.unresolved)
    assert cost.seconds < 5 and cost.peak < 32 * MiB, cost


def test_an_image_with_many_platforms_is_read_in_linear_time() -> None:
    """One annotated image listing 20,000 distinct platforms: its platforms are kept once each, in order, quickly."""
    platforms = ", ".join(f"linux/arch{n}" for n in range(20_000))
    chart = archive("name: bad\nversion: 1.0.0\nannotations:\n  artifacthub.io/images: |\n"
                    f"    - image: team/app:1\n      platforms: [{platforms}]\n")
    info, cost = measured(lambda: read_chart_archive(chart))
    assert isinstance(info, ChartInfo), info
    assert info.images[0].platforms[:2] == ("linux/arch0", "linux/arch1") and len(info.images[0].platforms) == 20_000
    assert cost.seconds < 5, cost


def test_long_keys_are_not_copied_into_every_source() -> None:
    """A 100,000-character key above 4,000 images: each source path is cut short, so memory stays small."""
    values = "? " + "k" * 100_000 + "\n:\n" + "".join(f"  i{n}: {{image: 'team/i{n}:1'}}\n" for n in range(4000))
    chart = archive(values=values)
    info, cost = measured(lambda: read_chart_archive(chart))
    assert isinstance(info, ChartInfo), info
    assert len(info.images) == 4000
    longest = max(len(source) for image in info.images for source in image.sources)
    assert longest <= 256, longest
    assert info.images[0].sources[0].endswith(".i0.image")
    assert cost.seconds < 5 and cost.peak < 32 * MiB, cost
