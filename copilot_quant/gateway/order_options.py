"""The placeOrder fields that change how IB would execute an order but the simulator does not model.

IB's Order carries many execution instructions beyond type, prices and time in force: iceberg display
sizes, hidden and block orders, sweep-to-fill, discretion, scale and hedge orders, adjustable stops,
volatility and delta-neutral orders, randomized sizes and prices, FA allocations and more. The simulated
gateway fills none of them the way IB would, and an order that silently dropped one would fill differently
from the one the client asked for. So the placeOrder parser reads each into :class:`ExecutionOptions`, and
:func:`unsupported_option` names the first one set, which the broker refuses with IB's error 201.

A field asks for nothing when it is empty, zero, false or IB's unset sentinel (the parser turns the
sentinel into None): that is every default of ib_async's, ib_insync's and IB's own ``Order``, so a default
order always passes. Any other value asks for something the simulator does not do.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["ExecutionOptions", "ib_field_name", "unsupported_option"]


@dataclass(frozen=True, slots=True)
class ExecutionOptions:
    """The execution-changing placeOrder fields, in wire order; IB's name is the camelCase of each."""

    block_order: bool = False
    sweep_to_fill: bool = False
    display_size: int | None = None
    hidden: bool = False
    discretionary_amt: float | None = None
    fa_group: str = ""
    fa_method: str = ""
    fa_percentage: str = ""
    fa_profile: str = ""
    all_or_none: bool = False
    min_qty: int | None = None
    percent_offset: float | None = None
    e_trade_only: bool = False
    firm_quote_only: bool = False
    nbbo_price_cap: float | None = None
    auction_strategy: int | None = None
    starting_price: float | None = None
    stock_ref_price: float | None = None
    delta: float | None = None
    stock_range_lower: float | None = None
    stock_range_upper: float | None = None
    volatility: float | None = None
    volatility_type: int | None = None
    delta_neutral_order_type: str = ""
    delta_neutral_aux_price: float | None = None
    continuous_update: bool = False
    reference_price_type: int | None = None
    scale_init_level_size: int | None = None
    scale_subs_level_size: int | None = None
    scale_price_increment: float | None = None
    scale_table: str = ""
    active_start_time: str = ""
    active_stop_time: str = ""
    hedge_type: str = ""
    opt_out_smart_routing: bool = False
    not_held: bool = False
    delta_neutral_contract: bool = False
    randomize_size: bool = False
    randomize_price: bool = False
    adjusted_order_type: str = ""
    trigger_price: float | None = None
    adjusted_stop_price: float | None = None
    adjusted_stop_limit_price: float | None = None
    adjusted_trailing_amount: float | None = None
    adjustable_trailing_unit: int | None = None
    is_oms_container: bool = False
    discretionary_up_to_limit_price: bool = False
    use_price_mgmt_algo: bool = False
    duration: int | None = None
    post_to_ats: int | None = None
    auto_cancel_parent: bool = False
    min_trade_qty: int | None = None

    def asked(self) -> dict[str, object]:
        """The fields that ask for something, by IB's name, in wire order (empty: a plain order)."""
        return {
            ib_field_name(spec.name): value
            for spec in fields(self)
            if (value := getattr(self, spec.name))  # None, 0, 0.0, False, "": the field asks for nothing
        }


def ib_field_name(name: str) -> str:
    """IB's name of an :class:`ExecutionOptions` field: ``display_size`` -> ``displaySize``."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def unsupported_option(options: ExecutionOptions) -> str | None:
    """The 201 reason for the first field of ``options`` that asks for something, or None."""
    for name, value in options.asked().items():
        if value is True:
            shown = name
        elif isinstance(value, str):
            shown = f"{name}={value!r}"
        else:
            shown = f"{name}={value:g}"
        return f"{shown} is not supported by the simulated gateway; send the order without it"
    return None
