"""The filter language: parsing, canonical text, the builder and its escaping."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scimsync import User
from scimsync.errors import FilterSyntaxError, ScimSyncError
from scimsync.filter import (
    MAX_DEPTH,
    And,
    AttrPath,
    Comparison,
    Filter,
    Not,
    Or,
    Present,
    ValuePath,
    and_,
    attr,
    format_value,
    not_,
    or_,
    parse_filter,
)

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


# -- strategies ------------------------------------------------------------------------------

# Names that are also keywords of the language must still parse back as names.
names = st.one_of(
    st.from_regex(r"\$?[A-Za-z][A-Za-z0-9_-]{0,8}", fullmatch=True),
    st.sampled_from(["not", "and", "or", "pr", "eq", "true", "null", "NOT", "userName"]),
)
urns = st.one_of(
    st.none(),
    st.sampled_from([ENTERPRISE, "urn:ietf:params:scim:schemas:core:2.0:User"]),
    st.from_regex(r"urn(:[A-Za-z0-9._%+~=-]{1,6}){1,4}", fullmatch=True),
)
paths = st.builds(AttrPath, name=names, sub=st.none() | names, urn=urns)
simple_paths = st.builds(AttrPath, name=names, sub=st.none() | names)
# Any Unicode, lone surrogates and control characters included, plus the characters that
# mean something in a filter.
strings = st.one_of(
    st.text(st.characters(exclude_categories=())),
    st.text(st.sampled_from(list('"\\])([ \t\n\x00\x1f\x7f\u2028orand pr'))),
)
values = st.one_of(
    strings,
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
operators = st.sampled_from(["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"])


def _leaves(path_strategy: st.SearchStrategy[AttrPath]) -> st.SearchStrategy[Filter]:
    return st.one_of(
        st.builds(Comparison, path_strategy, operators, values),
        st.builds(Present, path_strategy),
    )


def _combine(children: st.SearchStrategy[Filter]) -> st.SearchStrategy[Filter]:
    return st.one_of(
        st.builds(And, st.lists(children, min_size=2, max_size=3)),
        st.builds(Or, st.lists(children, min_size=2, max_size=3)),
        st.builds(Not, children),
    )


value_filters = st.recursive(_leaves(simple_paths), _combine, max_leaves=6)
filters = st.recursive(
    st.one_of(
        _leaves(paths),
        st.builds(ValuePath, st.builds(AttrPath, name=names, urn=urns), value_filters),
    ),
    _combine,
    max_leaves=8,
)


# -- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "bjensen"', attr("userName").eq("bjensen")),
        ('userName EQ "bjensen"', attr("userName").eq("bjensen")),
        ("title pr", attr("title").pr()),
        ("title PR", attr("title").pr()),
        ("age gt 42", attr("age").gt(42)),
        ("score le -1.5e3", attr("score").le(-1500.0)),
        ("active eq True", attr("active").eq(True)),
        ("active eq false", attr("active").eq(False)),
        ("title eq NULL", attr("title").eq(None)),
        ('name.familyName co "O\'Malley"', attr("name.familyName").co("O'Malley")),
        (f'{ENTERPRISE}:manager.value eq "26"', attr(f"{ENTERPRISE}:manager.value").eq("26")),
        ('members[$ref sw "https:"]', attr("members").where(attr("$ref").sw("https:"))),
        ("a pr and b pr or c pr", (attr("a").pr() & attr("b").pr()) | attr("c").pr()),
        ("a pr or b pr and c pr", attr("a").pr() | (attr("b").pr() & attr("c").pr())),
        ("a pr AND (b pr OR c pr)", attr("a").pr() & (attr("b").pr() | attr("c").pr())),
        ("not (a pr) and b pr", ~attr("a").pr() & attr("b").pr()),
        ("NOT(a pr)", ~attr("a").pr()),
        ("((a pr))", attr("a").pr()),
        ('  userName   eq\t"x"  ', attr("userName").eq("x")),
        ('userName eq"x"', attr("userName").eq("x")),
        ('emails[ type eq "work" ]', attr("emails").where(attr("type").eq("work"))),
        ('not eq "x"', attr("not").eq("x")),
        ("and pr and or pr", attr("and").pr() & attr("or").pr()),
        ('userName eq "\\u00e9\\n\\"\\\\"', attr("userName").eq('é\n"\\')),
    ],
)
def test_parse_reads_the_rfc_grammar(text: str, expected: Filter) -> None:
    """Operators and keywords in any case, precedence not > and > or, lenient spacing."""
    assert expected == parse_filter(text)


@pytest.mark.parametrize(
    ("text", "position", "expected"),
    [
        ("", 0, "an attribute path"),
        ("userName", 8, "an operator"),
        ('userName eq "x', 12, "a closing"),
        ('userName eq "x" and', 19, "an attribute path"),
        ('userName eq "x" nand title pr', 16, "'and', 'or'"),
        ("userName eq bjensen", 12, "a value"),
        ("userName like 1", 9, "an operator"),
        ("(title pr", 9, "')'"),
        ("title pr)", 8, "'and', 'or'"),
        ('emails[type eq "work"', 21, "']'"),
        ('emails[type[value eq "x"]]', 11, "value filters do not nest"),
        ('name.givenName[x eq "y"]', 14, "'[' follows an attribute name"),
        ("1abc pr", 0, "an attribute path"),
        ("user.name.given pr", 0, "an attribute path"),
        ('userName eq "\\x"', 13, "a JSON string"),
        ('userName eq "a\tb"', 14, "a JSON string"),
        ("n eq 01", 5, "a value"),
        ("n eq 1e999", 5, "a number in range"),
        ("n eq " + "9" * 5000, 5, "a number in range"),
        ("not title pr", 4, "an operator"),
        ("foo:bar eq 1", 0, "an attribute path"),
    ],
)
def test_parse_errors_say_where_and_what(text: str, position: int, expected: str) -> None:
    """A malformed filter raises FilterSyntaxError with the offset and what was expected."""
    with pytest.raises(FilterSyntaxError) as caught:
        parse_filter(text)
    assert (position, True) == (caught.value.position, expected in caught.value.expected)
    assert text == caught.value.text


def test_parse_limits_nesting() -> None:
    """Deep nesting is refused with a syntax error, never a RecursionError."""
    deep = "(" * (MAX_DEPTH + 5) + "a pr" + ")" * (MAX_DEPTH + 5)
    with pytest.raises(FilterSyntaxError) as caught:
        parse_filter(deep)
    assert "levels of nesting" in caught.value.expected
    shallow = "(" * MAX_DEPTH + "a pr" + ")" * MAX_DEPTH
    assert attr("a").pr() == parse_filter(shallow)


def test_parse_refuses_what_is_not_text() -> None:
    """A non-string input is a FilterSyntaxError too (the parser raises nothing else)."""
    with pytest.raises(FilterSyntaxError):
        parse_filter(b'userName eq "x"')  # type: ignore[arg-type]


def test_filter_syntax_error_is_a_project_error() -> None:
    """Callers catch every library error under ScimSyncError."""
    assert issubclass(FilterSyntaxError, ScimSyncError)


# -- canonical text --------------------------------------------------------------------------


@given(filters)
def test_canonical_text_round_trips(f: Filter) -> None:
    """``parse_filter(str(f)) == f`` for any filter, whatever its strings hold.

    The text of the parsed filter is the same text again (a fixed point).
    """
    parsed = parse_filter(str(f))
    assert f == parsed
    assert str(f) == str(parsed)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ('USERNAME Eq "x"', 'USERNAME eq "x"'),
        ("a pr AND (b pr OR c pr)", "a pr and (b pr or c pr)"),
        ("(a pr and b pr) or c pr", "a pr and b pr or c pr"),
        ("(a pr and b pr) and c pr", "a pr and b pr and c pr"),
        ("NOT(a pr)", "not (a pr)"),
        ("n eq 1.0", "n eq 1.0"),
        ("n eq 1E2", "n eq 100.0"),
        ("b eq TRUE", "b eq true"),
        ('s eq "\\u00e9"', 's eq "é"'),
        ('s eq "\\ud800"', 's eq "\\ud800"'),
        ('emails[type eq "a" or type eq "b"]', 'emails[type eq "a" or type eq "b"]'),
    ],
)
def test_canonical_text(text: str, canonical: str) -> None:
    """Lower-case keywords, single spaces, minimal parentheses, JSON literals."""
    assert canonical == str(parse_filter(text))


def test_values_keep_their_json_type() -> None:
    """``true`` and ``1`` are different values, although ``True == 1`` in Python."""
    assert attr("a").eq(True) != attr("a").eq(1)
    assert attr("a").eq(1) != attr("a").eq(1.0)
    assert "a eq 1" == str(parse_filter("a eq 1"))
    assert int is type(parse_filter("a eq 1").value)  # type: ignore[attr-defined]


def test_filters_are_hashable_values() -> None:
    """Equal filters hash alike, so they can key caches and sets."""
    first = parse_filter('userName eq "x" and title pr')
    second = attr("userName").eq("x") & attr("title").pr()
    assert (first, hash(first)) == (second, hash(second))
    assert 1 == len({first, second})


def test_repr_shows_the_filter_text() -> None:
    """A filter's repr is readable in test failures and logs."""
    assert "parse_filter('title pr')" == repr(attr("title").pr())


# -- the builder and injection ---------------------------------------------------------------

INJECTION = 'x" or userName pr or userName eq "y'


def test_injected_value_stays_one_comparison() -> None:
    """The issue's injection: the canonical text is one eq comparison of the literal."""
    f = attr("userName").eq(INJECTION)
    text = str(f)
    assert 'userName eq "x\\" or userName pr or userName eq \\"y"' == text
    parsed = parse_filter(text)
    assert Comparison(AttrPath("userName"), "eq", INJECTION) == parsed
    assert parsed.matches(User(user_name=INJECTION))
    assert not parsed.matches(User(user_name="someone.else"))
    assert not parsed.matches(User(user_name="y"))


@given(strings)
def test_any_string_stays_one_comparison(value: str) -> None:
    """Whatever a value holds, the builder's text parses to that one comparison."""
    assert Comparison(AttrPath("userName"), "eq", value) == parse_filter(
        str(attr("userName").eq(value))
    )


def test_format_value_escapes_what_json_escapes() -> None:
    """Quote, backslash and control characters are escaped; other text stays readable."""
    assert '"a\\"b\\\\c\\n\\u0000é"' == format_value('a"b\\c\n\x00é')
    assert "null" == format_value(None)
    assert "1.5" == format_value(1.5)


def test_builder_methods_make_every_operator() -> None:
    """Each builder method writes its operator."""
    ref = attr("meta.lastModified")
    made = [
        ref.eq("v"),
        ref.ne("v"),
        ref.co("v"),
        ref.sw("v"),
        ref.ew("v"),
        ref.gt("v"),
        ref.ge("v"),
        ref.lt("v"),
        ref.le("v"),
    ]
    assert ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"] == [c.op for c in made]
    assert "meta.lastModified pr" == str(ref.pr())


def test_builder_writes_datetimes_as_xsd_datetime() -> None:
    """A datetime value becomes its xsd:dateTime text (UTC as ``Z``)."""
    when = datetime(2011, 5, 13, 4, 42, 34, tzinfo=timezone.utc)
    assert 'meta.lastModified gt "2011-05-13T04:42:34Z"' == str(attr("meta.lastModified").gt(when))


def test_combinators() -> None:
    """and_/or_/not_ and the operators build the same nodes; one filter stays itself."""
    a, b, c = attr("a").pr(), attr("b").pr(), attr("c").pr()
    assert and_(a, b, c) == (a & b) & c == a & (b & c)
    assert or_(a, b) == a | b
    assert not_(a) == ~a
    assert a == and_(a) == or_(a)
    assert "a pr and (b pr or c pr)" == str(a & (b | c))
    assert "not (a pr and b pr)" == str(~(a & b))


def test_one_of() -> None:
    """``one_of`` is an or of eq comparisons."""
    assert 'externalId eq "1" or externalId eq "2"' == str(attr("externalId").one_of(["1", "2"]))


def test_value_path_builder() -> None:
    """``where`` builds ``attr[filter]``, with URN-qualified attributes too."""
    f = attr("emails").where(attr("type").eq("work") & attr("value").co("@example.com"))
    assert 'emails[type eq "work" and value co "@example.com"]' == str(f)
    assert f == parse_filter(str(f))


@pytest.mark.parametrize(
    "bad", ['userName eq "x"', "", "user name", "name.given.x", "a[b]", '"x"', "1a", "__class__"]
)
def test_attr_refuses_anything_but_a_path(bad: str) -> None:
    """``attr`` takes an attribute path only; text cannot smuggle filter syntax in."""
    with pytest.raises(FilterSyntaxError):
        attr(bad)


def test_nodes_refuse_bad_parts() -> None:
    """Nodes check what they hold: names, operators, values, nesting."""
    with pytest.raises(FilterSyntaxError):
        AttrPath('x" or "')
    with pytest.raises(FilterSyntaxError):
        AttrPath("name", urn="urn")
    with pytest.raises(ValueError, match="operator"):
        Comparison(AttrPath("a"), "like", "x")
    with pytest.raises(ValueError, match="finite"):
        attr("a").eq(float("nan"))
    with pytest.raises(TypeError):
        attr("a").eq(["x"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nest"):
        attr("a").where(attr("b").where(attr("c").pr()))
    with pytest.raises(ValueError, match="at least"):
        and_()
    with pytest.raises(ValueError, match="at least"):
        attr("a").one_of([])
    with pytest.raises(ValueError, match="at least two"):
        And((attr("a").pr(),))


# -- the attribute paths a filter reads ----------------------------------------------------

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "x"', (AttrPath("userName"),)),
        ('name.givenName sw "A"', (AttrPath("name", sub="givenName"),)),
        (
            'emails[type eq "work"] and userName pr',
            (AttrPath("emails", sub="type"), AttrPath("userName")),
        ),
        (
            'title eq "a" or (title eq "b" and not (nickName pr))',
            (AttrPath("title"), AttrPath("nickName")),
        ),
        (
            f'{ENTERPRISE}:manager.value eq "m" and {ENTERPRISE}:department pr',
            (
                AttrPath("manager", sub="value", urn=ENTERPRISE),
                AttrPath("department", urn=ENTERPRISE),
            ),
        ),
        (
            'urn:example:1.0:User:tags[value eq "x" or type eq "y"]',
            (
                AttrPath("tags", sub="value", urn="urn:example:1.0:User"),
                AttrPath("tags", sub="type", urn="urn:example:1.0:User"),
            ),
        ),
    ],
)
def test_attribute_paths_lists_what_a_filter_reads_once_in_order(
    text: str, expected: tuple[AttrPath, ...]
) -> None:
    """Every attribute path a filter reads, once each, in the order written; paths in a
    value filter as sub-attributes of its attribute, URNs kept."""
    assert expected == parse_filter(text).attribute_paths()


def test_the_value_filter_of_a_patch_path_reads_sub_attribute_names() -> None:
    """The filter of ``emails[type eq "work" and value co "@x"].display`` reads the
    sub-attributes ``type`` and ``value`` by their bare names."""
    from scimsync.patch import parse_path

    path = parse_path('emails[type eq "work" and value co "@x"].display')
    assert path.value_filter is not None
    assert (AttrPath("type"), AttrPath("value")) == path.value_filter.attribute_paths()


def test_built_filters_read_the_same_paths_as_parsed_ones() -> None:
    """A filter from the builder reads what its parsed text reads."""
    built = attr("emails").where(attr("type").eq("work")) & attr("userName").pr()
    assert parse_filter(str(built)).attribute_paths() == built.attribute_paths()
