"""Sources: records out of real-world files, issues in place of what cannot be read."""

from __future__ import annotations

import csv
import io
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scimsync.errors import ConfigurationError
from scimsync.sources import (
    CombinedSource,
    CsvSource,
    IssueCode,
    JsonLinesSource,
    MemorySource,
    Record,
    RecordIssue,
    Source,
    SourceItem,
)

FIXTURES = Path(__file__).parent / "fixtures"


def records(items: list[SourceItem]) -> list[Record]:
    return [item for item in items if isinstance(item, Record)]


def issues(items: list[SourceItem]) -> list[RecordIssue]:
    return [item for item in items if isinstance(item, RecordIssue)]


def people_csv() -> CsvSource:
    return CsvSource(FIXTURES / "people.csv", key="employee_id", multi_valued={"groups": ";"})


# -- CSV ---------------------------------------------------------------------------------


def test_csv_reads_every_readable_row_of_a_messy_file() -> None:
    """BOM, CRLF, quotes, embedded newlines, blank lines: every good row comes out, in order."""
    items = list(people_csv().read())
    expected_keys = ["E001", "E002", "E003", "E004", "E005", None, "E006", "E006", "E008", "E009"]
    assert expected_keys == [r.key for r in records(items)]


def test_csv_header_names_are_stripped_and_the_bom_is_not_part_of_them() -> None:
    """The first column is ``employee_id``: no BOM, no surrounding spaces."""
    first = records(list(people_csv().read()))[0]
    expected = ["employee_id", "email", "first_name", "last_name", "department", "status"]
    assert expected == list(first.attributes)[:6]
    assert "E001" == first["employee_id"]


def test_csv_quoted_fields_keep_commas_quotes_and_newlines() -> None:
    """Quoted fields hold the delimiter, doubled quotes and line breaks, exactly."""
    ann, bob = records(list(people_csv().read()))[:2]
    assert 'likes "quotes", commas' == ann["note"]
    assert "Smith, Jr." == bob["last_name"]
    assert "two\r\nlines" == bob["note"]


def test_csv_lines_are_where_records_start() -> None:
    """``line`` is the physical line a record starts on, counting embedded newlines."""
    lines = {r.key: r.line for r in records(list(people_csv().read()))}
    assert {
        "E001": 2,
        "E002": 3,
        "E003": 6,
        "E009": 15,
    } == {k: lines[k] for k in ("E001", "E002", "E003", "E009")}


def test_csv_keeps_non_ascii_names() -> None:
    """Names outside ASCII come through unchanged."""
    names = {r.key: (r["first_name"], r["last_name"]) for r in records(list(people_csv().read()))}
    assert ("Zoë", "Ångström") == names["E003"]
    assert ("太郎", "山田") == names["E005"]


def test_csv_multi_valued_columns_are_split_and_trimmed() -> None:
    """``"eng; all"`` becomes ``["eng", "all"]``; an empty cell an empty list."""
    groups = {r.key: r["groups"] for r in records(list(people_csv().read()))}
    assert ["eng", "all"] == groups["E001"]
    assert ["sales", "all"] == groups["E009"]
    assert [] == groups["E005"]


def test_csv_a_row_with_too_few_fields_is_an_issue_and_the_rest_flows() -> None:
    """A short row in the middle is MALFORMED with its line; the rows after it are read."""
    found = issues(list(people_csv().read()))
    assert (IssueCode.MALFORMED, 13, "E007", "4 fields where the header has 8") == (
        found[0].code,
        found[0].line,
        found[0].key,
        found[0].reason,
    )
    assert "E009" in [r.key for r in records(list(people_csv().read()))]


def test_csv_a_last_line_cut_short_says_so() -> None:
    """The last line, cut inside a quoted field with no newline, is reported as cut short."""
    last = issues(list(people_csv().read()))[-1]
    assert (IssueCode.MALFORMED, 16) == (last.code, last.line)
    assert "cut short" in last.reason


def test_csv_a_malformed_row_followed_by_more_rows_is_not_called_cut_short() -> None:
    """Only the final line can be cut short; an earlier bad row is plainly malformed."""
    assert "cut short" not in issues(list(people_csv().read()))[0].reason


def test_csv_delimiter_and_separator_are_configurable() -> None:
    """A ``;``-delimited file with ``|`` between groups reads as the comma one would."""
    source = CsvSource(
        FIXTURES / "people-semicolon.csv",
        key="employee_id",
        delimiter=";",
        multi_valued={"groups": "|"},
    )
    items = list(source.read())
    assert [] == issues(items)
    assert [["eng", "all"], ["all"], []] == [r["groups"] for r in records(items)]


def test_csv_other_encodings_read_with_the_encoding_given() -> None:
    """A Windows-1252 file reads right when told its encoding."""
    source = CsvSource(FIXTURES / "people-cp1252.csv", key="id", encoding="cp1252")
    assert [
        ("René", "Müller"),
        ("Zoë", "Ångström"),
    ] == [(r["first_name"], r["last_name"]) for r in records(list(source.read()))]


def test_csv_undecodable_bytes_spoil_only_their_row() -> None:
    """A byte that is not UTF-8 makes its row MALFORMED (with the byte); the others read."""
    items = list(CsvSource(FIXTURES / "people-bad-bytes.csv", key="id").read())
    assert ["1", "3"] == [r.key for r in records(items)]
    [issue] = issues(items)
    assert (IssueCode.MALFORMED, 3, "2", "byte 0xff is not valid utf-8") == (
        issue.code,
        issue.line,
        issue.key,
        issue.reason,
    )


def test_csv_a_header_without_rows_is_a_complete_empty_read() -> None:
    """A header and no rows yields nothing at all: an empty source, not a failure."""
    assert [] == list(CsvSource(FIXTURES / "people-header-only.csv", key="employee_id").read())


@pytest.mark.parametrize(
    ("content", "options", "reason"),
    [
        (b"", {}, "the file is empty: no header row"),
        (b"\n\n", {}, "the file is empty: no header row"),
        (b"id,name\n1,a\n", {"key": "employee_id"}, "the key column 'employee_id'"),
        (b"id,name,name\n1,a,b\n", {}, "the header names column 'name' twice"),
        (b"id,name\n1,a\n", {"multi_valued": {"groups": ";"}}, "multi-valued column 'groups'"),
        (b"id,n\xffame\n1,a\n", {}, "the header is not readable"),
    ],
)
def test_csv_an_unusable_header_makes_the_whole_read_incomplete(
    tmp_path: Path, content: bytes, options: dict[str, Any], reason: str
) -> None:
    """A header that cannot be trusted yields one READ_INCOMPLETE issue and no records."""
    path = tmp_path / "broken.csv"
    path.write_bytes(content)
    kwargs: dict[str, Any] = {"key": "id", **options}
    [issue] = list(CsvSource(path, **kwargs).read())
    assert isinstance(issue, RecordIssue)
    assert IssueCode.READ_INCOMPLETE == issue.code
    assert reason in issue.reason


def test_csv_a_missing_file_is_an_incomplete_read_not_an_empty_one(tmp_path: Path) -> None:
    """An absent file yields READ_INCOMPLETE, so nobody is taken for gone."""
    [issue] = list(CsvSource(tmp_path / "absent.csv", key="id").read())
    assert isinstance(issue, RecordIssue)
    assert (IssueCode.READ_INCOMPLETE, "absent.csv") == (issue.code, issue.origin)


def test_csv_values_in_a_column_without_a_name_are_reported(tmp_path: Path) -> None:
    """A trailing delimiter in the header is harmless until a row puts a value there."""
    path = tmp_path / "trailing.csv"
    path.write_text("id,name,\n1,Ann,\n2,Bob,surprise\n", encoding="utf-8")
    items = list(CsvSource(path, key="id").read())
    assert [{"id": "1", "name": "Ann"}] == [dict(r.attributes) for r in records(items)]
    [issue] = issues(items)
    assert (IssueCode.MALFORMED, 3) == (issue.code, issue.line)
    assert "column 3" in issue.reason


def test_csv_an_unclosed_quote_is_reported_and_reading_resumes(tmp_path: Path) -> None:
    """An unclosed quote swallowing past the field limit is one MALFORMED issue; rows after
    the swallowed part are read again."""
    path = tmp_path / "unclosed.csv"
    lines = ["id,name", '1,"unclosed', *(f"{i},name{i}" for i in range(2, 12_000))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    items = list(CsvSource(path, key="id").read())
    [issue] = issues(items)
    assert (IssueCode.MALFORMED, 2) == (issue.code, issue.line)
    assert "unclosed quote" in issue.reason
    assert "11999" == records(items)[-1].key


def test_csv_a_huge_line_costs_a_bounded_memory_and_spoils_only_its_row(
    tmp_path: Path,
) -> None:
    """A 30 MB line is one MALFORMED issue naming its line and the limit it passed (no
    unclosed quote blamed); the rows after it are read; reading it costs about twice
    max_row_size at peak, never the line."""
    from scimsync.sources._csv import MAX_ROW_SIZE

    path = tmp_path / "huge.csv"
    with path.open("w", encoding="utf-8", newline="") as stream:
        stream.write("id,name\nE1,Ann\nE2," + "x" * 30_000_000 + "\nE3,Bob\n")
    tracemalloc.start()
    try:
        items = list(CsvSource(path, key="id").read())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    [issue] = issues(items)
    assert (IssueCode.MALFORMED, 3) == (issue.code, issue.line)
    assert (
        f"the row is longer than {MAX_ROW_SIZE} characters (max_row_size); the rows after "
        "it are read"
    ) == issue.reason
    assert ["E1", "E3"] == [r.key for r in records(items)]
    assert peak < 3 * MAX_ROW_SIZE, f"peak {peak} bytes"


def test_csv_max_row_size_is_configurable(tmp_path: Path) -> None:
    """A smaller max_row_size refuses rows past it (and only those) and bounds memory
    with it."""
    path = tmp_path / "rows.csv"
    with path.open("w", encoding="utf-8", newline="") as stream:
        stream.write("id,note\nE1," + "a" * 900 + "\nE2," + "b" * 5_000_000 + "\nE3,c\n")
    tracemalloc.start()
    try:
        items = list(CsvSource(path, key="id", max_row_size=1_000).read())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [("E1", 2), ("E3", 4)] == [(r.key, r.line) for r in records(items)]
    assert [3] == [i.line for i in issues(items)]
    assert peak < 500_000, f"peak {peak} bytes"
    with pytest.raises(ConfigurationError, match="max_row_size"):
        CsvSource(path, key="id", max_row_size=0)


def test_csv_a_quoted_field_running_on_past_the_limit_blames_an_unclosed_quote(
    tmp_path: Path,
) -> None:
    """A quote left open takes the next lines into its field until the row passes
    max_row_size: the issue names the lines it swallowed, and reading goes on after."""
    path = tmp_path / "open-quote.csv"
    lines = ["id,name", 'E1,"never closed', *(f"E{i},name{i}" for i in range(2, 40)), "E99,last"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    items = list(CsvSource(path, key="id", max_row_size=200).read())
    first = issues(items)[0]
    assert (IssueCode.MALFORMED, 2) == (first.code, first.line)
    assert first.reason.startswith(
        "the row is longer than 200 characters (max_row_size): a quoted field runs on from "
        "line 2 to line "
    )
    assert "(an unclosed quote?)" in first.reason
    assert "E99" == records(items)[-1].key


def test_csv_a_quote_running_to_the_end_of_the_file_says_so(tmp_path: Path) -> None:
    """A quote never closed takes in every line to the end of the file: one issue says
    which lines, instead of a field count."""
    path = tmp_path / "to-the-end.csv"
    path.write_text('id,name\nE1,Ann\nE2,"open\nE3,Bob\nE4,Cy\n', encoding="utf-8")
    items = list(CsvSource(path, key="id").read())
    [issue] = issues(items)
    assert (IssueCode.MALFORMED, 3, "E2") == (issue.code, issue.line, issue.key)
    assert (
        "a quoted field runs on from line 3 to the end of the file (line 5): an unclosed "
        "quote? lines 4-5 were read into it, not as rows"
    ) == issue.reason
    assert ["E1"] == [r.key for r in records(items)]


def test_csv_a_field_over_the_csv_field_limit_on_one_line_blames_no_quote(
    tmp_path: Path,
) -> None:
    """A field longer than the csv module's field size limit, on one line, says so; the
    rows after it are read."""
    path = tmp_path / "wide.csv"
    wide = "y" * (csv.field_size_limit() + 10)
    path.write_text(f"id,name\nE1,{wide}\nE2,Bob\n", encoding="utf-8")
    items = list(CsvSource(path, key="id").read())
    [issue] = issues(items)
    assert (
        f"a field is longer than {csv.field_size_limit()} characters (the csv module's field "
        "size limit); the rows after it are read"
    ) == issue.reason
    assert (2, ["E2"]) == (issue.line, [r.key for r in records(items)])


def test_csv_header_given_for_a_file_without_one(tmp_path: Path) -> None:
    """``header=`` names the columns of a headerless file; line 1 is then a record."""
    path = tmp_path / "bare.csv"
    path.write_text("1,Ann\n2,Bob\n", encoding="utf-8")
    source = CsvSource(path, key="id", header=["id", "name"])
    assert [("1", 1), ("2", 2)] == [(r.key, r.line) for r in records(list(source.read()))]
    assert ("id", "name") == source.fields()


def test_csv_fields_lists_the_header() -> None:
    """``fields()`` reads only the header, names stripped."""
    expected = ("employee_id", "email", "first_name", "last_name", "department", "status")
    assert expected == people_csv().fields()[:6]


def test_csv_fields_of_a_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    """Asking for the fields of a file that is not there is a clear project error."""
    with pytest.raises(ConfigurationError, match="cannot read the header"):
        CsvSource(tmp_path / "absent.csv", key="id").fields()


def test_csv_group_files_give_member_keys() -> None:
    """A groups file with a members column yields group records with member keys."""
    source = CsvSource(FIXTURES / "groups.csv", key="group_id", kind="group", members="members")
    found = records(list(source.read()))
    assert [
        ("G1", ("E001", "E003", "E404")),
        ("G2", ("E002", "E009")),
        ("G3", ("E001",)),
    ] == [(r.key, r.members) for r in found]
    assert {"group"} == {r.kind for r in found}


def test_csv_reads_afresh_each_time(tmp_path: Path) -> None:
    """Every ``read()`` is a new read of the file as it is now."""
    path = tmp_path / "p.csv"
    path.write_text("id\n1\n", encoding="utf-8")
    source = CsvSource(path, key="id")
    assert ["1"] == [r.key for r in records(list(source.read()))]
    path.write_text("id\n1\n2\n", encoding="utf-8")
    assert ["1", "2"] == [r.key for r in records(list(source.read()))]


def test_csv_bad_settings_are_refused_when_made() -> None:
    """``members=`` on a users file, or an unknown kind, fail before any read."""
    with pytest.raises(ConfigurationError):
        CsvSource("x.csv", key="id", members="members")
    with pytest.raises(ConfigurationError):
        CsvSource("x.csv", key="id", kind="robot")  # type: ignore[arg-type]


_cell = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00"),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.lists(_cell, min_size=3, max_size=3), min_size=1, max_size=8))
def test_csv_reads_back_whatever_the_csv_module_writes(rows: list[list[str]]) -> None:
    """Any cells (quotes, delimiters, newlines, any script) round-trip through a file."""
    rows = [[f"k{i}", *row[1:]] for i, row in enumerate(rows)]  # non-blank keyed rows
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["key", "a", "b"])
    writer.writerows(rows)
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "round.csv"
        path.write_text(buffer.getvalue(), encoding="utf-8", newline="")
        items = list(CsvSource(path, key="key").read())
    assert [] == issues(items)
    assert rows == [[r["key"], r["a"], r["b"]] for r in records(items)]


def _peak_while_reading(path: Path, rows: int) -> int:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "email", "first", "last", "groups"])
        for i in range(rows):
            writer.writerow([f"E{i}", f"user{i}@example.com", "Given", f"Family{i}", "a;b;c"])
    source = CsvSource(path, key="id", multi_valued={"groups": ";"})
    tracemalloc.start()
    try:
        count = sum(1 for _ in source.read())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows == count
    return peak


def test_csv_streams_with_flat_memory(tmp_path: Path) -> None:
    """A file six times longer takes no more memory to read: rows are never accumulated."""
    small = _peak_while_reading(tmp_path / "small.csv", 2_000)
    large = _peak_while_reading(tmp_path / "large.csv", 12_000)
    assert large < small * 1.5 + 16_384, f"peak {large} bytes for 12,000 rows, {small} for 2,000"


# -- JSON Lines ---------------------------------------------------------------------------


def people_jsonl() -> list[SourceItem]:
    return list(JsonLinesSource(FIXTURES / "people.jsonl", key="id").read())


def test_jsonl_reads_good_lines_and_numbers_as_keys() -> None:
    """Objects become records with nested values kept; a numeric key reads as text."""
    found = records(people_jsonl())
    assert ["J1", "2", "J4", "J4", None] == [r.key for r in found]
    assert {"givenName": "Ann", "familyName": "Lee"} == found[0]["name"]
    assert [1, 3, 8, 9, 10] == [r.line for r in found]


def test_jsonl_bad_lines_are_issues_with_their_reason() -> None:
    """Not JSON, not an object, a name twice, a key of the wrong type: one issue each."""
    found = [(i.line, i.code, i.reason) for i in issues(people_jsonl())]
    assert [4, 5, 6, 7, 11] == [line for line, _, _ in found]
    assert {IssueCode.MALFORMED} == {code for _, code, _ in found}
    reasons = [reason for _, _, reason in found]
    assert reasons[0].startswith("not valid JSON")
    assert "expected a JSON object, got list" == reasons[1]
    assert "the object names 'email' twice" == reasons[2]
    assert "the key 'id' is a dict, not a string" == reasons[3]
    assert "cut short" in reasons[4]


def test_jsonl_group_files_take_scim_style_members() -> None:
    """Members as ``[{"value": ...}]`` become member keys; members that are no list, an issue."""
    source = JsonLinesSource(FIXTURES / "groups.jsonl", key="id", kind="group", members="members")
    items = list(source.read())
    assert [("G1", ("J1", "2")), ("G2", ())] == [(r.key, r.members) for r in records(items)]
    [issue] = issues(items)
    assert ("G3", IssueCode.MALFORMED) == (issue.key, issue.code)


def test_jsonl_a_missing_file_is_an_incomplete_read(tmp_path: Path) -> None:
    """An absent file yields READ_INCOMPLETE."""
    [issue] = list(JsonLinesSource(tmp_path / "absent.jsonl", key="id").read())
    assert isinstance(issue, RecordIssue)
    assert IssueCode.READ_INCOMPLETE == issue.code


def test_jsonl_undecodable_bytes_spoil_only_their_line(tmp_path: Path) -> None:
    """A line with a byte that is not UTF-8 is MALFORMED; its neighbours read."""
    path = tmp_path / "bytes.jsonl"
    path.write_bytes(b'{"id": "1"}\n{"id": "2", "n": "\xff"}\n{"id": "3"}\n')
    items = list(JsonLinesSource(path, key="id").read())
    assert ["1", "3"] == [r.key for r in records(items)]
    assert [(2, "byte 0xff is not valid utf-8")] == [(i.line, i.reason) for i in issues(items)]


# -- memory, combined, protocols -----------------------------------------------------------


def test_memory_source_reads_users_then_groups() -> None:
    """Dicts become records with their 1-based position; groups carry member keys."""
    source = MemorySource(
        users=[{"id": "u1", "mail": "a@x"}, {"id": 7}],
        groups=[{"id": "g1", "members": ["u1", {"value": "7"}]}],
    )
    found = records(list(source.read()))
    assert [
        ("u1", "user", 1),
        ("7", "user", 2),
        ("g1", "group", 1),
    ] == [(r.key, r.kind, r.line) for r in found]
    assert ("u1", "7") == found[2].members


def test_memory_source_reports_items_that_are_not_mappings() -> None:
    """A non-mapping item, or a key of the wrong type, is MALFORMED at its position."""
    bad: list[Any] = ["nope", {"id": ["a"]}, {"id": "ok"}]
    items = list(MemorySource(users=bad).read())
    assert [
        (1, IssueCode.MALFORMED),
        (2, IssueCode.MALFORMED),
    ] == [(i.line, i.code) for i in issues(items)]
    assert ["ok"] == [r.key for r in records(items)]


def test_memory_source_passes_records_through() -> None:
    """Ready-made records come out as they are."""
    record = Record(key="r1", attributes={"a": 1})
    assert [record] == list(MemorySource(users=[record]).read())


def test_combined_source_reads_each_part_in_turn() -> None:
    """A users file and a groups file read as one source, issues included."""
    users = people_csv()
    groups = CsvSource(FIXTURES / "groups.csv", key="group_id", kind="group", members="members")
    items = list(CombinedSource(users, groups).read())
    assert 10 + 3 == len(records(items))
    assert {"user", "group"} == {r.kind for r in records(items)}


def test_record_reads_like_its_attributes() -> None:
    """``record["x"]``, ``record.get``, ``in`` and iteration reach the attributes."""
    record = Record(key="k", attributes={"a": 1}, line=4, origin="f.csv")
    assert (1, None, "d", True, ["a"]) == (
        record["a"],
        record.get("b"),
        record.get("b", "d"),
        "a" in record,
        list(record),
    )
    assert "f.csv line 4 key 'k'" == record.where()


def test_issue_text_says_where_and_why() -> None:
    """An issue reads as origin, line, key, code and reason."""
    issue = RecordIssue(code=IssueCode.NO_KEY, reason="no key", line=3, origin="p.csv")
    assert "p.csv line 3: no_key: no key" == str(issue)


def test_only_unknown_members_and_references_lose_no_identity() -> None:
    """Every issue code except UNKNOWN_MEMBER and UNKNOWN_REFERENCE means an identity
    may be missing."""
    assert [IssueCode.UNKNOWN_MEMBER, IssueCode.UNKNOWN_REFERENCE] == [
        c for c in IssueCode if not c.loses_identity
    ]


def test_built_in_sources_satisfy_the_source_protocol() -> None:
    """Each built-in source is a ``Source``."""
    sources = [people_csv(), JsonLinesSource("x", key="id"), MemorySource(), CombinedSource()]
    assert [True] * 4 == [isinstance(source, Source) for source in sources]
