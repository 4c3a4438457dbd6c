"""``--param NAME=VALUE`` (``-p``): strategy constructor arguments from the command line.

Real CLI invocations (typer's CliRunner) of ``backtest``, ``live`` (its error path: it must fail before it
connects; the run against the simulated gateway is in tests/live/test_cli_live.py) and ``parity``, on
strategy files written into ``tmp_path``; then the value parser on its own.
"""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path
from typing import Any

import pytest
from copilot_quant.cli import app
from copilot_quant.cli.exit_codes import USAGE_ERROR
from copilot_quant.cli.strategy_spec import (
    build_strategy,
    describe_parameters,
    load_strategy,
    parse_params,
    parse_value,
)
from copilot_quant.errors import ConfigError, StrategyError
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

EXAMPLE = Path(__file__).resolve().parents[2] / "copilot_quant" / "examples" / "sma_cross.py"

runner = CliRunner()

RECORDER = textwrap.dedent(
    """
    import json

    from copilot_quant.backtest.orders import Order
    from copilot_quant.backtest.strategy import Strategy


    class Recorder(Strategy):
        '''Prints what its constructor got (value and type), buys ``quantity`` of ``symbol`` once.'''

        def __init__(self, period, ratio=0.5, flag=False, symbol="AAPL", weights=(1,), quantity=5, note=None):
            super().__init__()
            if period <= 0:
                raise ValueError(f"period must be positive, got {period}")
            got = dict(period=period, ratio=ratio, flag=flag, symbol=symbol, weights=weights,
                       quantity=quantity, note=note)
            print("PARAMS " + json.dumps({k: [type(v).__name__, v] for k, v in got.items()}))
            self.symbol, self.quantity = symbol, quantity

        def initialize(self):
            self.done = False

        def on_data(self, timestamp, data):
            if self.done:
                return None
            self.done = True
            return [Order(self.symbol, self.quantity, "market", "buy")]

        def on_fill(self, fill):
            print(f"FILL {fill.order.symbol} {fill.fill_quantity:g}")


    class Anything(Strategy):
        '''Takes any keyword argument.'''

        def __init__(self, size=1, **options):
            super().__init__()
            print("OPTIONS " + json.dumps({"size": size, **options}, sort_keys=True))

        def on_data(self, timestamp, data):
            return None


    class NoParams(Strategy):
        def on_data(self, timestamp, data):
            return None


    class Appender(Strategy):
        # changes the list it is given

        def __init__(self, items):
            super().__init__()
            items.append(len(items))
            self.items = items

        def on_data(self, timestamp, data):
            return None
    """
)


@pytest.fixture
def recorder(tmp_path: Path) -> Path:
    path = tmp_path / "recorder.py"
    path.write_text(RECORDER, encoding="utf-8")
    return path


def invoke(*args: str):
    return runner.invoke(app, list(args))


def backtest(spec: str, *params: str, symbols: tuple[str, ...] = ("AAPL",)):
    args = ["backtest", spec, "--symbols", *symbols, "--start", "2010-01-01", "--end", "2010-03-31"]
    for param in params:
        args += ["-p", param]
    return invoke(*args)


def seen_params(output: str, marker: str = "PARAMS ") -> list[dict[str, Any]]:
    return [json.loads(line[len(marker) :]) for line in output.splitlines() if line.startswith(marker)]


def assert_one_line_error(result, *fragments: str) -> str:
    """Exit code 2, one ``Error:`` line on stderr holding every fragment, no traceback; returns the line."""
    assert result.exit_code == USAGE_ERROR == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error:")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.output
    return lines[0]


# ------------------------------------------------------------------------------------------- backtest
def test_backtest_params_reach_the_constructor_with_their_types(recorder: Path):
    result = backtest(
        f"{recorder}:Recorder",
        "period=3",
        "ratio=0.25",
        "flag=true",
        "symbol=MSFT",
        "weights=[1, 2.5]",
        "quantity=7",
        "note='10'",  # a quoted literal stays a string
        symbols=("AAPL", "MSFT"),
    )
    assert result.exit_code == 0, result.output
    (seen,) = seen_params(result.stdout)
    assert seen == {
        "period": ["int", 3],
        "ratio": ["float", 0.25],
        "flag": ["bool", True],
        "symbol": ["str", "MSFT"],
        "weights": ["list", [1, 2.5]],
        "quantity": ["int", 7],
        "note": ["str", "10"],
    }
    assert "FILL MSFT 7" in result.stdout  # the instance that ran is the one built from the params
    assert (
        "Strategy: Recorder(period=3, ratio=0.25, flag=True, symbol='MSFT', weights=[1, 2.5], quantity=7, "
        "note='10')" in result.stdout
    )


def test_backtest_header_shows_the_defaults_of_parameters_not_given(recorder: Path):
    result = backtest(f"{recorder}:Recorder", "period=2", "flag=False", "note=None")
    assert result.exit_code == 0, result.output
    (seen,) = seen_params(result.stdout)
    assert seen["flag"] == ["bool", False]
    assert seen["note"] == ["NoneType", None]
    assert seen["weights"] == ["tuple", [1]]  # the default, untouched
    assert (
        "Strategy: Recorder(period=2, ratio=0.5, flag=False, symbol='AAPL', weights=(1,), quantity=5, "
        "note=None)" in result.stdout
    )


def test_backtest_of_the_example_with_params_changes_the_run():
    default = backtest(f"{EXAMPLE}:SimpleMovingAverage")
    tuned = backtest(f"{EXAMPLE}:SimpleMovingAverage", "fast_period=5", "slow_period=12", "quantity=50")
    assert default.exit_code == tuned.exit_code == 0, default.output + tuned.output
    assert (
        "Strategy: SimpleMovingAverage(symbol=None, quantity=10, fast_period=10, slow_period=30, time_in_force='day')"
        in default.stdout
    )
    assert (
        "Strategy: SimpleMovingAverage(symbol=None, quantity=50, fast_period=5, slow_period=12, time_in_force='day')"
        in tuned.stdout
    )
    metrics = [line for line in default.stdout.splitlines() if "Final value" in line]
    assert metrics != [line for line in tuned.stdout.splitlines() if "Final value" in line]


def test_long_option_name_and_kwargs_constructors(recorder: Path):
    result = invoke(
        "backtest",
        f"{recorder}:Anything",
        "-s",
        "AAPL",
        "--start",
        "2010-01-01",
        "--end",
        "2010-01-31",
        "--param",
        "size=3",
        "--param",
        "colour=blue",
        "--param",
        "levels=(1, 2)",
    )
    assert result.exit_code == 0, result.output
    assert seen_params(result.stdout, "OPTIONS ") == [{"colour": "blue", "levels": [1, 2], "size": 3}]
    assert "Strategy: Anything(size=3, colour='blue', levels=(1, 2))" in result.stdout


def test_an_unknown_param_lists_the_accepted_ones(recorder: Path):
    result = backtest(f"{recorder}:Recorder", "period=3", "perod=4")
    line = assert_one_line_error(
        result, "Recorder has no parameter 'perod'", "did you mean 'period'?", "period (required)"
    )
    for accepted in ("ratio=0.5", "flag=False", "symbol='AAPL'", "weights=(1,)", "quantity=5", "note=None"):
        assert accepted in line


def test_a_param_for_a_class_without_parameters_is_refused(recorder: Path):
    result = backtest(f"{recorder}:NoParams", "x=1")
    assert_one_line_error(result, "NoParams has no parameter 'x'", "takes no parameters")


def test_a_missing_required_param_is_refused(recorder: Path):
    result = backtest(f"{recorder}:Recorder", "ratio=0.1")
    assert_one_line_error(result, "Recorder needs a value for period", "-p period=VALUE", "ratio=0.5")


@pytest.mark.parametrize(
    ("param", "fragment"),
    [
        ("period", "'period' is not NAME=VALUE"),
        ("=3", "'=3' is not NAME=VALUE"),
        ("1st=3", "'1st' is not a parameter name"),
        ("class=3", "'class' is not a parameter name"),
    ],
)
def test_a_malformed_param_is_refused(recorder: Path, param: str, fragment: str):
    assert_one_line_error(backtest(f"{recorder}:Recorder", param), "--param", fragment)


def test_a_repeated_param_is_refused(recorder: Path):
    assert_one_line_error(
        backtest(f"{recorder}:Recorder", "period=3", "period=4"), "--param period is given twice"
    )


def test_a_constructor_that_raises_is_bad_input_with_its_message(recorder: Path):
    result = backtest(f"{recorder}:Recorder", "period=-1")
    assert_one_line_error(
        result, "Recorder(period=-1) failed", "ValueError", "period must be positive, got -1"
    )


def test_the_examples_own_check_is_reported_as_bad_input():
    result = backtest(f"{EXAMPLE}:SimpleMovingAverage", "fast_period=30", "slow_period=10")
    assert_one_line_error(
        result, "SimpleMovingAverage(fast_period=30, slow_period=10) failed", "fast_period < slow_period"
    )


def test_a_wrongly_typed_value_is_bad_input(recorder: Path):
    result = backtest(f"{recorder}:Recorder", "period=three")  # a string: 'three' <= 0 raises TypeError
    assert_one_line_error(result, "Recorder(period='three') failed", "TypeError")


# ------------------------------------------------------------------------------------------- live
def _fail_if_called(*args: object, **kwargs: object) -> None:
    raise AssertionError("live must refuse bad parameters before it creates the engine or connects")


@pytest.mark.parametrize(
    ("params", "fragments"),
    [
        (["period=3", "perod=4"], ["has no parameter 'perod'", "period (required)", "ratio=0.5"]),
        (["ratio=0.1"], ["needs a value for period"]),
        (["period"], ["'period' is not NAME=VALUE"]),
        (["period=0"], ["Recorder(period=0) failed", "period must be positive, got 0"]),
    ],
)
def test_live_refuses_bad_params_before_it_connects(
    recorder: Path, monkeypatch: pytest.MonkeyPatch, params: list[str], fragments: list[str]
):
    from copilot_quant.backtest import live_engine

    monkeypatch.setattr(live_engine.LiveStrategyEngine, "__init__", _fail_if_called)
    args = ["live", f"{recorder}:Recorder", "-s", "AAPL", "--port", "1", "--duration", "1"]
    for param in params:
        args += ["-p", param]
    result = invoke(*args)
    assert_one_line_error(result, *fragments)
    assert "Connecting" not in result.output


# ------------------------------------------------------------------------------------------- parity
def parity(spec: str, *params: str):
    args = ["parity", spec, "-s", "AAPL", "--start", "2010-01-01", "--end", "2010-02-26"]
    for param in params:
        args += ["-p", param]
    return invoke(*args)


@pytest.mark.timeout(120)
def test_parity_passes_the_params_to_both_runs(recorder: Path):
    result = parity(f"{recorder}:Recorder", "period=4", "quantity=3", "flag=TRUE", "weights=[2]")
    assert result.exit_code == 0, result.output
    seen = seen_params(result.stdout)
    assert len(seen) == 3  # checked once up front, then the backtest's and the live run's instances
    for one in seen:
        assert one["period"] == ["int", 4]
        assert one["quantity"] == ["int", 3]
        assert one["flag"] == ["bool", True]
        assert one["weights"] == ["list", [2]]
    assert result.stdout.count("FILL AAPL 3") == 2  # one fill in each run
    assert "Strategy: Recorder(period=4, ratio=0.5, flag=True, symbol='AAPL', weights=[2]" in result.stdout
    assert "PARITY: identical" in result.stdout


@pytest.mark.parametrize(
    ("params", "fragments"),
    [
        (["period=3", "size=2"], ["has no parameter 'size'", "period (required)"]),
        (["quantity=2"], ["needs a value for period"]),
        (["period:3"], ["'period:3' is not NAME=VALUE"]),
        (["period=-5"], ["period must be positive, got -5"]),
    ],
)
def test_parity_refuses_bad_params(recorder: Path, params: list[str], fragments: list[str]):
    result = parity(f"{recorder}:Recorder", *params)
    assert_one_line_error(result, *fragments)
    assert "backtest vs live" not in result.stdout


# ------------------------------------------------------------------------------------------- the parser
@given(st.integers())
def test_ints_round_trip(value: int):
    parsed = parse_value(repr(value))
    assert type(parsed) is int
    assert parsed == value


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_round_trip(value: float):
    parsed = parse_value(repr(value))
    assert type(parsed) is float
    assert parsed == value
    assert math.copysign(1.0, parsed) == math.copysign(1.0, value)


@given(st.booleans())
def test_bools_round_trip(value: bool):
    assert parse_value(repr(value)) is value
    assert parse_value(repr(value).lower()) is value
    assert parse_value(repr(value).upper()) is value


@given(st.text())
def test_quoted_strings_round_trip(value: str):
    assert parse_value(repr(value)) == value


@given(st.lists(st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text())))
def test_lists_and_tuples_round_trip(values: list[Any]):
    assert parse_value(repr(values)) == values
    assert parse_value(repr(tuple(values))) == tuple(values)


@given(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]*", fullmatch=True))
def test_a_bare_word_is_itself(word: str):
    if word.lower() in ("true", "false", "none"):
        return
    assert parse_value(word) == word  # a name, not a literal: the plain string


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10", 10),
        (" 10 ", 10),
        ("-3", -3),
        ("1_000", 1000),
        ("0.5", 0.5),
        ("1e-3", 0.001),
        ("True", True),
        ("false", False),
        ("None", None),
        ("none", None),
        ("NONE", None),
        ("'quoted'", "quoted"),
        ('"10"', "10"),
        ("[1, 'a', 2.5]", [1, "a", 2.5]),
        ("(1, 2)", (1, 2)),
        ("{'a': 1}", {"a": 1}),
        ("AAPL", "AAPL"),
        ("BRK.B", "BRK.B"),
        ("2020-01-01", "2020-01-01"),
        ("hello world", "hello world"),
        ("__import__('os')", "__import__('os')"),  # never evaluated
        ("", ""),
        ("inf", "inf"),  # not a Python literal
    ],
)
def test_parse_value_examples(text: str, expected: Any):
    parsed = parse_value(text)
    assert parsed == expected
    assert type(parsed) is type(expected)


def test_parse_params_splits_at_the_first_equals_sign():
    assert parse_params(["a=1", "b = x=y", "c="]) == {"a": 1, "b": " x=y", "c": ""}
    with pytest.raises(ConfigError, match="not NAME=VALUE"):
        parse_params(["a"])


def test_load_strategy_and_describe_parameters(recorder: Path):
    loaded = load_strategy(f"{EXAMPLE}:SimpleMovingAverage", ["symbol=msft", "quantity=2.5"])
    assert loaded.params == {"symbol": "msft", "quantity": 2.5}
    assert getattr(loaded.instance, "symbol", None) == "MSFT"
    assert loaded.describe() == (
        "SimpleMovingAverage(symbol='msft', quantity=2.5, fast_period=10, slow_period=30, time_in_force='day')"
    )
    assert (
        describe_parameters(loaded.cls)
        == "symbol=None, quantity=10, fast_period=10, slow_period=30, time_in_force='day'"
    )
    anything = load_strategy(f"{recorder}:Anything").cls
    assert describe_parameters(anything) == "size=1, **options (any other name)"
    with pytest.raises(StrategyError, match="has no parameter"):
        load_strategy(f"{EXAMPLE}:SimpleMovingAverage", ["fast=3"])


def test_each_instance_gets_its_own_copy_of_mutable_values(recorder: Path):
    loaded = load_strategy(f"{recorder}:Appender", ["items=[1, 2]"])
    assert getattr(loaded.instance, "items", None) == [1, 2, 2]
    again = build_strategy(loaded.cls, loaded.params)  # as parity builds one per run from the same params
    assert getattr(again, "items", None) == [1, 2, 2]
    assert loaded.params == {"items": [1, 2]}
